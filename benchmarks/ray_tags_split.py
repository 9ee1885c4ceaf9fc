"""Write the seed's docs-area split of the Ray-docs questions as `rag-assets tags` files.

../shared/datasets/embedding_qa.json (question, source): tag = first path segment after /en/master/ if it is one of
the seed's areas, else "other"; stratified 80/20 split with random_state 1234 (the seed's). Then:
    python benchmarks/ray_tags_split.py --out /tmp/ray_tags
    rag-assets tags fit --train /tmp/ray_tags/train.jsonl --out /tmp/ray_tags/model
    rag-assets tags eval --model /tmp/ray_tags/model --test /tmp/ray_tags/test.jsonl --json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

SEED_TAGS = ("rllib", "tune", "train", "cluster", "ray-core", "data", "serve", "ray-observability")
DATASET = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets" / "embedding_qa.json"


def seed_tag(source: str) -> str:
    rest = source.split("/en/master/", 1)[1] if "/en/master/" in source else ""
    first = rest.split("/", 1)[0]
    return first if first in SEED_TAGS else "other"


def main() -> int:
    from sklearn.model_selection import train_test_split

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", type=Path, default=DATASET)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    rows = json.loads(args.dataset.read_text(encoding="utf-8"))
    questions = [r["question"].strip() for r in rows]
    tags = [seed_tag(r["source"]) for r in rows]
    q_train, q_test, t_train, t_test = train_test_split(questions, tags, test_size=0.2, stratify=tags, random_state=1234)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, qs, ts in (("train", q_train, t_train), ("test", q_test, t_test)):
        with open(args.out / f"{name}.jsonl", "w", encoding="utf-8") as f:
            f.writelines(json.dumps({"question": q, "tag": t}) + "\n" for q, t in zip(qs, ts))
    print(f"{len(q_train)} train, {len(q_test)} test rows in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
