"""Flywheel assets (issue 15). `query_log` and `feedback` are the serving stage's assets (issue 11): this stage
depends on them by key. Outputs are JSON/JSONL under <data dir>/feedback/; the logic is in lib/feedback."""

import dagster as dg

from rag_assets.defs.metadata import markdown_table
from rag_assets.defs.resources import RagSettings
from rag_assets.lib.evaluate.pipeline import EvalConfig
from rag_assets.lib.feedback import evidence, gaps, tags
from rag_assets.lib.feedback.candidates import CandidateStore, build_candidates, eval_questions_in
from rag_assets.lib.feedback.files import FeedbackFiles
from rag_assets.lib.feedback.triage import LABELS, SIGNALS, Thresholds
from rag_assets.lib.serve.query_log import read_log
from rag_assets.lib.store import read_json, write_json

GROUP = "feedback"
TABLE_ROWS = 30  # per label in the UI table; the JSON has them all


def _num(x) -> str:
    return "–" if x is None else f"{x:.2f}"


def _grouped_markdown(rows: list[dict]) -> str:
    parts = []
    for name in LABELS:
        mine = [r for r in rows if r["label"] == name]
        if not mine:
            continue
        table = [{"docs area": r["docs_area"], "question": r["question"], "why": r["reason"],
                  "signals": ", ".join(r["signals"]), "top-1 cos": _num(r["top1_similarity"]), "judge": _num(r["judge_score"]),
                  "trace": r["trace_id"]} for r in mine[:TABLE_ROWS]]
        more = f"\n\n_{len(mine) - TABLE_ROWS} more in the JSON_" if len(mine) > TABLE_ROWS else ""
        parts.append(f"### {name} ({len(mine)})\n\n{markdown_table(table)}{more}")
    return "\n\n".join(parts) or "_no underperforming queries_"


@dg.asset(group_name=GROUP, deps=["query_log", "feedback"], kinds={"python", "lancedb"})
def underperforming_queries(rag: RagSettings) -> dg.MaterializeResult:
    """Logged queries with a thumbs-down, a low top-1 similarity, no source visited, a low offline-judge score
    or a failure; each labelled retrieval, generation, docs or unknown from the data."""
    settings = rag.settings()
    files = FeedbackFiles(settings.data_dir)
    result = evidence.triage_data_dir(settings.data_dir, Thresholds.from_settings(settings), settings.docs_base_url)
    write_json(files.underperforming, result)
    s = result["summary"]
    return dg.MaterializeResult(metadata={
        "dagster/row_count": dg.MetadataValue.int(s["underperforming"]),
        "queries_considered": dg.MetadataValue.int(s["queries_considered"]),
        **{f"label_{k}": dg.MetadataValue.int(s["by_label"][k]) for k in LABELS},
        **{f"signal_{k}": dg.MetadataValue.int(s["by_signal"][k]) for k in SIGNALS},
        "by_label_and_area": dg.MetadataValue.md(markdown_table(s["by_label_and_area"])),
        "queries": dg.MetadataValue.md(_grouped_markdown(result["rows"])),
        "thresholds": dg.MetadataValue.json(result["thresholds"]),
        "path": dg.MetadataValue.path(str(files.underperforming)),
    })


@dg.asset(group_name=GROUP, deps=[underperforming_queries], kinds={"python"})
def eval_candidates(rag: RagSettings) -> dg.MaterializeResult:
    """Underperforming queries with a known good page (a correction or a visited page), as pending eval rows with
    provenance; `rag-assets feedback list|accept ID|reject ID` decides."""
    data_dir = rag.settings().data_dir
    files, store = FeedbackFiles(data_dir), CandidateStore(data_dir)
    eval_path = EvalConfig.from_env().eval_path
    new = build_candidates(read_json(files.underperforming)["rows"], set(eval_questions_in(eval_path)))
    counts = store.merge(new)
    pending = [c for c in store.load() if c["state"] == "pending"]
    return dg.MaterializeResult(metadata={
        "dagster/row_count": dg.MetadataValue.int(sum(counts[s] for s in ("pending", "accepted", "rejected"))),
        **{k: dg.MetadataValue.int(v) for k, v in counts.items()},
        "eval_path": dg.MetadataValue.path(str(eval_path)),
        "pending_candidates": dg.MetadataValue.md(markdown_table(
            [{"id": c["id"], "label": c["label"], "question": c["question"], "source": c["source"],
              "from": c["provenance"]["source_from"]} for c in pending[:TABLE_ROWS]])),
        "path": dg.MetadataValue.path(str(files.candidates)),
    })


@dg.asset(group_name=GROUP, deps=["query_log", "feedback"], kinds={"python"})
def tag_corrections(rag: RagSettings) -> dg.MaterializeResult:
    """Tag corrections from feedback as {"question", "tag"} rows, one per question: extra training data that
    `tag_classifier` reads from <data dir>/feedback/tag_corrections.jsonl."""
    data_dir = rag.settings().data_dir
    rows = tags.tag_corrections(*read_log(data_dir))
    path = FeedbackFiles(data_dir).tag_corrections
    per_tag = tags.write_tag_corrections(path, rows)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": dg.MetadataValue.int(len(rows)),
        "tags": dg.MetadataValue.int(len(per_tag)),
        "per_tag": dg.MetadataValue.md(markdown_table([{"tag": t, "rows": n} for t, n in per_tag.items()])),
        "path": dg.MetadataValue.path(str(path)),
    })


@dg.asset(group_name=GROUP, deps=[underperforming_queries], kinds={"python", "scikitlearn"})
def docs_gaps(rag: RagSettings) -> dg.MaterializeResult:
    """Questions labelled docs (nothing in the corpus is close), clustered into topics with counts and examples:
    what the docs team should write next."""
    settings = rag.settings()
    files = FeedbackFiles(settings.data_dir)
    triaged = read_json(files.underperforming)
    rows = [r for r in triaged["rows"] if r["label"] == "docs"]
    vectors = evidence.query_vectors(triaged.get("index_model") or settings.embedding_model, [r["query"] for r in rows])
    topics = gaps.docs_gaps(rows, vectors, settings.feedback_gap_distance)
    write_json(files.docs_gaps, {"distance_threshold": settings.feedback_gap_distance, "questions": len(rows),
                                 "topics": topics})
    return dg.MaterializeResult(metadata={
        "dagster/row_count": dg.MetadataValue.int(len(topics)),
        "docs_questions": dg.MetadataValue.int(len(rows)),
        "topics": dg.MetadataValue.md(markdown_table(
            [{"topic": t["topic"], "questions": t["count"], "thumbs down": t["thumbs_down"],
              "areas": ", ".join(t["docs_areas"]), "examples": " · ".join(t["examples"])} for t in topics],
            max_cell=300)),
        "path": dg.MetadataValue.path(str(files.docs_gaps)),
    })
