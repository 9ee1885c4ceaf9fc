"""Ingestion: documents, sections, chunks, embeddings, change detection."""
