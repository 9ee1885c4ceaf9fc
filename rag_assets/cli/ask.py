"""`rag-assets ask "QUESTION" [--json]`: answer from the docs with sources (the LLM, or offline extraction)."""

from __future__ import annotations

import json
import sys

from rag_assets import cli
from rag_assets.lib.route.router import OVERRIDES, load_router
from rag_assets.lib.retrieve.retriever import MODES, Retriever


def register(sub) -> None:
    p = sub.add_parser("ask", help="answer a question from the docs, with sources")
    p.add_argument("question")
    p.add_argument("--mode", choices=MODES, default=None, help="retrieval mode (default RAG_RETRIEVAL_MODE, hybrid)")
    p.add_argument("-k", "--num-chunks", type=int, default=None, help="chunks of context (default RAG_NUM_CHUNKS, 5)")
    p.add_argument("--llm", choices=OVERRIDES, default="auto",
                   help="which LLM answers: the router's choice (auto, default), the open or the strong one")
    p.add_argument("--json", action="store_true", help="print {answer, sources, llm, route, ...} as JSON")
    cli.add_settings_flags(p)
    p.set_defaults(func=run)


def run(args) -> int:
    if not args.question.strip():
        raise ValueError("the question is empty")
    settings = cli.settings(args, retrieval_mode=args.mode, num_chunks=args.num_chunks)
    retriever = Retriever.open(settings.data_dir)  # the committed index and its model
    router = load_router(settings)
    hits = retriever.search(args.question, settings.retrieval_mode, settings.num_chunks)
    out = router.answer(args.question, hits, args.llm)  # adds route and router_probability
    out["retrieved_sources"] = [h.source for h in hits]
    if args.json:
        print(json.dumps(out, indent=2))
    elif out["failed"]:
        print(f"rag-assets ask: no answer ({out['llm']}): {out['error']}", file=sys.stderr)
    else:
        print(out["answer"])
        print("\nSources:")
        for s in out["sources"]:
            print(f"- {s}")
    return 1 if out["failed"] else 0
