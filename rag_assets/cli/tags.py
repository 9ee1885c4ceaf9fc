"""`rag-assets tags fit --train FILE --out DIR` and `rag-assets tags eval --model DIR --test FILE [--json]`.

FILE: JSON (a list) or JSONL rows {"question", "tag"}, or {"question", "source"} with --base-url.
"""

from __future__ import annotations

import json

from rag_assets.lib.retrieve import tags


def register(sub) -> None:
    p = sub.add_parser("tags", help="train and evaluate the docs-area classifier (retrieval mode rerank)")
    cmds = p.add_subparsers(dest="tags_command", required=True)
    fit = cmds.add_parser("fit", help="train a classifier from question/tag rows")
    fit.add_argument("--train", required=True, help="JSON or JSONL rows {question, tag} (or {question, source})")
    fit.add_argument("--out", required=True, help="model directory to write")
    fit.add_argument("--kind", choices=tags.KINDS, action="append",
                     help="classifier kind (repeat to try several; the best on --validation is kept; default tfidf)")
    fit.add_argument("--validation", help="rows to choose the kind on (default: none, the first kind)")
    fit.add_argument("--min-count", type=int, default=0, help="fold tags rarer than this into `other` (default 0)")
    _tag_args(fit)
    fit.set_defaults(func=run_fit)
    ev = cmds.add_parser("eval", help="score a classifier on question/tag rows")
    ev.add_argument("--model", required=True, help="model directory written by `tags fit` or `tag_classifier`")
    ev.add_argument("--test", required=True, help="JSON or JSONL rows {question, tag} (or {question, source})")
    ev.add_argument("--json", action="store_true", help='print {"n", "accuracy", "weighted_f1", "macro_f1", "per_tag"}')
    _tag_args(ev)
    ev.set_defaults(func=run_eval)


def _tag_args(p) -> None:
    p.add_argument("--base-url", help="docs base URL: tag {question, source} rows by their docs area")
    p.add_argument("--depth", type=int, default=1, help="path segments below --base-url that make an area")


def run_fit(args) -> int:
    questions, labels = tags.read_rows(args.train, args.base_url, args.depth)
    if args.min_count > 0:
        labels = tags.fold_rare(labels, args.min_count)
    kinds = args.kind or ["tfidf"]
    val_q, val_t = tags.read_rows(args.validation, args.base_url, args.depth) if args.validation else ([], [])
    model, scores = tags.train_classifier(questions, labels, val_q, val_t, kinds=kinds, min_count=0,
                                          base_url=args.base_url or "", depth=args.depth)
    model.save(args.out, validation=scores.get(model.kind))
    print(f"tags fit: {model.kind} on {len(questions)} rows, {len(model.classes)} tags -> {args.out}")
    for kind, s in scores.items():
        print(f"  validation {kind}: weighted F1 {s['weighted_f1']}, accuracy {s['accuracy']} (n={s['n']})")
    return 0


def run_eval(args) -> int:
    model = tags.TagClassifier.load(args.model)
    questions, labels = tags.read_rows(args.test, args.base_url or model.base_url or None, args.depth)
    labels = tags.fold_rare(labels, keep=model.classes)  # tags the model never saw count as `other`
    result = tags.evaluate(model, questions, labels)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"n={result['n']} accuracy={result['accuracy']} weighted_f1={result['weighted_f1']} "
          f"macro_f1={result['macro_f1']}")
    for tag, s in result["per_tag"].items():
        print(f"  {tag:24} f1={s['f1']:.3f} precision={s['precision']:.3f} recall={s['recall']:.3f} n={s['support']}")
    return 0
