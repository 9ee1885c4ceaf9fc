"""Serving: the HTTP question-answering API, chat, and the query log it keeps."""
