"""What retrieval learns from the synthetic questions: the docs-area classifier and the hybrid fusion."""

from __future__ import annotations

import json
import time
from pathlib import Path

from rag_assets.lib.questions.synthetic import read_questions
from rag_assets.lib.retrieve import fusion, tags
from rag_assets.lib.settings import TUNED_FILE, Settings
from rag_assets.lib.store import write_json

FEEDBACK_FILE = "feedback/tag_corrections.jsonl"  # rows {"question", "tag"} written from user feedback


def tag_model_dir(data_dir: Path | str) -> Path:
    return Path(data_dir) / "models" / "tag_classifier"


def feedback_rows(data_dir: Path | str) -> tuple[list[str], list[str], int]:
    """(questions, tags, bad lines) from <data dir>/feedback/tag_corrections.jsonl; bad lines are skipped."""
    path = Path(data_dir) / FEEDBACK_FILE
    questions, labels, bad = [], [], 0
    if not path.is_file():
        return questions, labels, bad
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            q, t = row["question"], row["tag"]
        except (ValueError, KeyError, TypeError):
            bad += 1
            continue
        if isinstance(q, str) and isinstance(t, str) and q.strip() and t.strip():
            questions.append(q.strip())
            labels.append(t.strip())
        else:
            bad += 1
    return questions, labels, bad


def build_tag_classifier(settings: Settings, depth: int = 1, kinds=tags.KINDS,
                         min_count: int = tags.DEFAULT_MIN_COUNT) -> dict:
    t0 = time.perf_counter()
    train = read_questions(settings.data_dir, "train")
    val = read_questions(settings.data_dir, "validation")
    if not train:
        raise ValueError("synthetic_questions has no train rows: nothing to train the tag classifier on")
    base = settings.docs_base_url
    q_train = [r["question"] for r in train]
    t_train = [tags.docs_area(r["source"], base, depth) for r in train]
    fq, ft, bad = feedback_rows(settings.data_dir)
    model, scores = tags.train_classifier(
        q_train + fq, t_train + ft, [r["question"] for r in val], [tags.docs_area(r["source"], base, depth) for r in val],
        kinds=kinds, min_count=min_count, base_url=base, depth=depth,
    )
    chosen = scores.get(model.kind, {})
    out = model.save(tag_model_dir(settings.data_dir), validation=chosen, candidates={
        k: {m: v.get(m) for m in ("n", "accuracy", "weighted_f1", "macro_f1")} for k, v in scores.items()},
        feedback_rows=len(fq))
    return {"kind": model.kind, "classes": model.classes, "train_rows": len(q_train), "feedback_rows": len(fq),
            "feedback_bad_lines": bad, "validation_rows": len(val), "validation": chosen, "candidates":
            {k: v.get("weighted_f1") for k, v in scores.items()}, "path": str(out),
            "seconds": time.perf_counter() - t0}


def build_hybrid_tuning(settings: Settings, grid: dict | None = None) -> dict:
    """Sweep the fusion on the validation questions (all kept questions when there are too few) and record the
    choice in <data dir>/models/hybrid_tuning.json, which Settings reads under env vars and promoted values."""
    from rag_assets.lib.evaluate.metrics import paired_test
    from rag_assets.lib.retrieve.retriever import HybridParams, RerankParams, Retriever

    t0 = time.perf_counter()
    questions = read_questions(settings.data_dir, "validation")
    used = "validation"
    if len(questions) < 20:
        questions, used = [r for r in read_questions(settings.data_dir) if r["split"] != "dropped"], "train+validation"
    retriever = Retriever.open(settings.data_dir, hybrid=HybridParams(), rerank=RerankParams())
    result = fusion.tune(retriever, questions, grid)
    per = result.pop("per_question")
    result["vs_semantic"] = {"mrr": paired_test(per["tuned_mrr"], per["semantic_mrr"]),
                             "hit@10": paired_test(per["tuned_hit10"], per["semantic_hit10"])}
    result["vs_default"] = {"mrr": paired_test(per["tuned_mrr"], per["default_mrr"])}
    # Synthetic questions favour words copied from titles: adopt a tuned setting only when the paired test says
    # it beats the default fusion on them, else keep the defaults (recorded as such).
    result["best"] = result["params"]
    result["adopted"] = result["vs_default"]["mrr"]["a_better"]
    if not result["adopted"]:
        result["params"] = dict(fusion.DEFAULT_PARAMS)
    result["questions"] = used
    write_json(Path(settings.data_dir) / TUNED_FILE, {k: v for k, v in result.items() if k != "table"}
               | {"table": result["table"][:20]})
    return result | {"seconds": time.perf_counter() - t0}
