"""Index wiring: vector_index (LanceDB), lexical_index (Tantivy) and the blocking consistency check."""

import dagster as dg

from rag_assets.defs.index import assets, checks

ASSETS = dg.load_assets_from_modules([assets])
CHECKS = [checks.chunk_ids_consistent]
