"""The two indexes over chunk ids: LanceDB vectors and Tantivy BM25."""
