"""`rag-assets search "QUERY" --mode semantic|lexical|hybrid -k N [--json]`."""

from __future__ import annotations

import json

from rag_assets import cli
from rag_assets.lib.retrieve.retriever import MODES, Retriever


def register(sub) -> None:
    p = sub.add_parser("search", help="search the indexes")
    p.add_argument("query")
    p.add_argument("--mode", choices=MODES, default=None, help="default RAG_RETRIEVAL_MODE or the promoted variant, else hybrid")
    p.add_argument("-k", type=int, default=None, help="number of hits (default RAG_NUM_CHUNKS or the promoted variant, else 5)")
    p.add_argument("--json", action="store_true", help="print a JSON list of hits, best first")
    cli.add_settings_flags(p)
    p.set_defaults(func=run)


def run(args) -> int:
    if args.k is not None and args.k < 1:
        raise ValueError("-k must be at least 1")
    settings = cli.settings(args, retrieval_mode=args.mode, num_chunks=args.k)
    retriever = Retriever.open(settings.data_dir)  # the committed index, queried with its own model
    hits = retriever.search(args.query, settings.retrieval_mode, settings.num_chunks)
    if args.json:
        print(json.dumps([dict(rank=i, **h.as_dict()) for i, h in enumerate(hits, 1)], indent=2))
        return 0
    if not hits:
        print("no hits")
    for i, h in enumerate(hits, 1):
        snippet = " ".join(h.text.split())[:200]
        print(f"{i}. [{h.score:.4f}] {h.source}\n   {snippet}")
    return 0
