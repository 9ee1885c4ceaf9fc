"""`rag-assets feedback list [--all] [--json] | accept ID | reject ID [--reason TEXT]`: turn eval candidates
(materialize `eval_candidates` first) into eval set rows, with their provenance, or drop them."""

from __future__ import annotations

import json

from rag_assets.lib.evaluate.eval_data import eval_set_version
from rag_assets.lib.evaluate.pipeline import EvalConfig
from rag_assets.lib.feedback.candidates import CandidateStore
from rag_assets.lib.settings import Settings


def register(sub) -> None:
    p = sub.add_parser("feedback", help="review eval candidates from user feedback")
    actions = p.add_subparsers(dest="action", required=True)
    ls = actions.add_parser("list", help="list eval candidates (pending ones unless --all)")
    ls.add_argument("--all", action="store_true", help="also accepted and rejected ones")
    ls.add_argument("--json", action="store_true", help="print the candidates as JSON")
    ls.set_defaults(func=run_list)
    acc = actions.add_parser("accept", help="append a candidate to the eval set (RAG_EVAL_PATH)")
    acc.add_argument("id")
    acc.set_defaults(func=run_accept)
    rej = actions.add_parser("reject", help="drop a candidate for good")
    rej.add_argument("id")
    rej.add_argument("--reason", default=None)
    rej.set_defaults(func=run_reject)


def _store() -> CandidateStore:
    return CandidateStore(Settings.from_env().data_dir)


def run_list(args) -> int:
    store = _store()
    candidates = [c for c in store.load() if args.all or c["state"] == "pending"]
    if args.json:
        print(json.dumps(candidates, indent=2, ensure_ascii=False))
        return 0
    if not candidates:
        print("no pending eval candidates" if not args.all else f"no eval candidates in {store.path}")
        return 0
    for c in candidates:
        p = c["provenance"]
        print(f"{c['id']}  [{c['state']}, {c['label']}]  {c['question']}\n"
              f"    source {c['source']} (from {p['source_from']}; trace {p['trace_id']}, asked {p['asked_at']})")
        if p.get("comment"):
            print(f"    comment: {' '.join(p['comment'].split())[:200]}")
    return 0


def run_accept(args) -> int:
    eval_path = EvalConfig.from_env().eval_path
    row = _store().accept(args.id, eval_path)
    print(f"accepted {args.id} into {eval_path} (eval set version {eval_set_version(eval_path)}): "
          f"{row['question']} -> {row['source']}")
    return 0


def run_reject(args) -> int:
    c = _store().reject(args.id, args.reason)
    print(f"rejected {c['id']}: {c['question']}")
    return 0
