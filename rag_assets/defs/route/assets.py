"""Routing assets: `router` (trained from labelled questions, with validation figures and a threshold curve)
and `router_report` (always-open, always-strong, router and random routing on the eval set, when both LLMs
are configured; the classifier's figures otherwise). The logic lives in lib/route."""

import base64

import dagster as dg

from rag_assets.defs.metadata import markdown_table
from rag_assets.defs.resources import RagSettings
from rag_assets.lib.evaluate.eval_data import EvalFiles
from rag_assets.lib.evaluate.pipeline import EvalConfig, make_judge
from rag_assets.lib.retrieve.retriever import Retriever
from rag_assets.lib.route import classifier, report as report_lib
from rag_assets.lib.route.labels import load_labelled
from rag_assets.lib.route.router import load_router
from rag_assets.lib.store import read_json, write_json

GROUP = "routing"
FIGURES = ("weighted_f1", "macro_f1", "strong_recall", "strong_precision", "strong_share")


def _float(v) -> dg.MetadataValue:
    return dg.MetadataValue.float(float("nan") if v is None else float(v))


def classifier_metadata(meta: dict) -> dict:
    v = meta["validation"]
    return {
        "router_kind": meta["kind"],
        "threshold": _float(meta["threshold"]),
        "strong_share_target": _float(meta["strong_share_target"]),
        **{f"validation_{k}": _float(v[k]) for k in FIGURES},
        "validation_strong_auc": _float(v.get("strong_auc")),
        "always_open_weighted_f1": _float(meta["always_open_validation"]["weighted_f1"]),
        "n_train": dg.MetadataValue.int(meta["n_train"]),
        "n_validation": dg.MetadataValue.int(meta["n_validation"]),
    }


@dg.asset(group_name=GROUP, kinds={"scikitlearn"}, output_required=False)
def router(context: dg.AssetExecutionContext, rag: RagSettings):
    """A calibrated open/strong classifier from labelled questions (RAG_ROUTER_TRAIN_PATH), its threshold set
    for RAG_ROUTER_STRONG_SHARE; the kinds tried are compared on a stratified, seeded validation split.
    Skipped, with a warning, when there is no labelled file."""
    settings = rag.settings()
    path = settings.router_train_path
    if path is None or not path.is_file():
        reason = (f"router skipped: no labelled routing data ({path or 'none found'}); set RAG_ROUTER_TRAIN_PATH "
                  f"or write {settings.data_dir / 'router' / 'labels.jsonl'}")
        context.log.warning(reason)
        yield dg.AssetObservation(asset_key=context.asset_key, metadata={"skipped": reason})  # shown in the UI
        return
    questions, targets = load_labelled(path)
    result = classifier.fit_router(questions, targets, settings.router_strong_share, settings.embedding_model)
    out = classifier.save(result, settings.router_dir, trained_on=str(path))
    meta = classifier.load(out).meta
    image = base64.b64encode((out / classifier.CURVE_FILE).read_bytes()).decode()
    candidates = [{"kind": k, **{f: round(c[f], 3) for f in FIGURES}, "threshold": round(c["threshold"], 4),
                   "strong_auc": None if c["strong_auc"] is None else round(c["strong_auc"], 3)}
                  for k, c in result.candidates.items()]
    yield dg.MaterializeResult(metadata={
        **classifier_metadata(meta),
        "dagster/row_count": len(questions),
        "trained_on": dg.MetadataValue.path(str(path)),
        "path": dg.MetadataValue.path(str(out)),
        "candidates": dg.MetadataValue.md(markdown_table(candidates)),
        "threshold_curve": dg.MetadataValue.md(f"![threshold curve](data:image/png;base64,{image})"),
        "fit_seconds": _float(meta["fit_seconds"]),
    })


@dg.asset(group_name=GROUP, deps=[router, "eval_questions", "reference_answers", "vector_index", "lexical_index"],
          kinds={"openai"})
def router_report(context: dg.AssetExecutionContext, rag: RagSettings) -> dg.MaterializeResult:
    """Quality (cached judge) and cost per query of always-open, always-strong, the router and random routing
    at its strong share on the eval set, with the router's APGR and its bootstrap CI; offline, the figures of
    the classifier only."""
    settings = rag.settings()
    model = classifier.load(settings.router_dir)
    routing = load_router(settings)
    path = settings.data_dir / "reports" / "router_report.json"
    report = {"router": {k: model.meta[k] for k in ("kind", "threshold", "validation", "strong_share_target")}}
    md = classifier_metadata(model.meta)
    offline = routing.off_reason or (None if settings.llm_endpoint and settings.llm_model
                                     else "the open LLM is not configured (OPENAI_BASE_URL, RAG_LLM_MODEL)")
    if offline:
        report["status"] = f"classifier figures only: {offline}"
    else:
        files = EvalFiles(rag.layout())
        cfg = EvalConfig.from_env()
        questions = read_json(files.questions)["rows"]
        references = None
        if files.references.exists():
            references = {r["question"]: r["reference_answer"] for r in read_json(files.references)["rows"]
                          if r["reference_answer"]}
        retriever = Retriever.open(settings.data_dir)
        open_gen = routing.generator(routing.route("", "open"))
        strong_gen = routing.generator(routing.route("", "strong"))
        report |= report_lib.compare_llms(retriever, questions, model, open_gen, strong_gen,
                                          make_judge(files.judge_cache), references, cfg.retrieval_mode,
                                          cfg.num_chunks)
        report["status"] = "compared"
        for name, p in report["policies"].items():
            md[f"{name}_quality"] = _float(p["quality"])
            md[f"{name}_cost_per_query"] = _float(p["cost_per_query"])
        md["apgr"] = _float(report["apgr"])
        md["apgr_ci95"] = dg.MetadataValue.text(str(report["apgr_ci95"]))
        md["router_strong_share"] = _float(report["policies"].get("router", {}).get("strong_share"))
        md["questions_compared"] = dg.MetadataValue.int(report["n"])
        md["judge_calls"] = dg.MetadataValue.int(report["judge_calls"])
        md["policies"] = dg.MetadataValue.md(report_lib.markdown(report))
    context.log.info(f"router_report: {report['status']}")
    write_json(path, report)
    return dg.MaterializeResult(metadata={**md, "status": report["status"], "path": dg.MetadataValue.path(str(path))})
