"""`rag-assets router fit --train FILE --out DIR` and `rag-assets router eval --model DIR --test FILE [--json]`.

FILE: JSONL rows {"question", "target"} (target 0 = needs the strong LLM, 1 = the open LLM is enough).
"""

from __future__ import annotations

import json

from rag_assets.lib.route import classifier
from rag_assets.lib.route.labels import load_labelled
from rag_assets.lib.settings import Settings

EVAL_KEYS = ("n", "weighted_f1", "macro_f1", "strong_recall", "strong_precision", "strong_share")


def register(sub) -> None:
    p = sub.add_parser("router", help="train or evaluate the open/strong LLM router")
    rsub = p.add_subparsers(dest="router_command", required=True)
    fit = rsub.add_parser("fit", help="train a router on labelled questions (a held-out split reports figures)")
    fit.add_argument("--train", required=True, help="JSONL rows {question, target}")
    fit.add_argument("--out", required=True, help="directory to write the router to")
    fit.set_defaults(func=run_fit)
    ev = rsub.add_parser("eval", help="score a trained router on labelled questions")
    ev.add_argument("--model", required=True, help="a router directory written by `router fit`")
    ev.add_argument("--test", required=True, help="JSONL rows {question, target}")
    ev.add_argument("--json", action="store_true", help="print {n, weighted_f1, macro_f1, strong_recall, ...}")
    ev.set_defaults(func=run_eval)


def run_fit(args) -> int:
    settings = Settings.from_env()
    questions, targets = load_labelled(args.train)
    result = classifier.fit_router(questions, targets, settings.router_strong_share, settings.embedding_model)
    out = classifier.save(result, args.out, trained_on=str(args.train))
    v = result.validation
    print(f"router: {result.kind}, threshold {result.threshold:.4f} for a strong share of "
          f"{settings.router_strong_share:.2f} -> {out}")
    print(f"validation (n={v['n']}): weighted F1 {v['weighted_f1']:.3f}, macro F1 {v['macro_f1']:.3f}, "
          f"strong recall {v['strong_recall']:.3f}, strong precision {v['strong_precision']:.3f}, "
          f"strong share {v['strong_share']:.3f}")
    for kind, c in result.candidates.items():
        print(f"  {kind:18} weighted F1 {c['weighted_f1']:.3f}  strong recall {c['strong_recall']:.3f}  "
              f"AUC {c['strong_auc'] if c['strong_auc'] is None else round(c['strong_auc'], 3)}")
    return 0


def run_eval(args) -> int:
    model = classifier.load(args.model)
    questions, targets = load_labelled(args.test)
    figures = model.figures(questions, targets)
    if args.json:
        print(json.dumps({k: figures[k] for k in EVAL_KEYS}))
    else:
        print(f"{args.test}: n={figures['n']} weighted F1 {figures['weighted_f1']:.3f}, macro F1 "
              f"{figures['macro_f1']:.3f}, strong recall {figures['strong_recall']:.3f}, strong precision "
              f"{figures['strong_precision']:.3f}, strong share {figures['strong_share']:.3f} "
              f"({model.kind}, threshold {model.threshold:.4f})")
    return 0
