"""rag-assets: a RAG system for your documentation, as Dagster assets."""
