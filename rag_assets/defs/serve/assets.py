"""`query_log` and `feedback`: what `rag-assets serve` answered and what users said about it."""

import dagster as dg

from rag_assets.defs.metadata import markdown_table
from rag_assets.defs.resources import RagSettings
from rag_assets.lib.serve.log_stats import feedback_stats, query_stats
from rag_assets.lib.serve.query_log import query_log_path, read_log


@dg.asset(group_name="serve", description="Every request the API answered (or failed): question, retrieved chunks, "
          "index version, LLM, tokens, latency, status. Read from <data dir>/serve/query_log.sqlite.")
def query_log(rag: RagSettings) -> dg.MaterializeResult:
    data_dir = rag.settings().data_dir
    queries, _ = read_log(data_dir)
    s = query_stats(queries)
    md = {
        "dagster/row_count": dg.MetadataValue.int(s["rows"]),
        "failure_rate": dg.MetadataValue.float(round(s["failure_rate"], 4)),
        "latency_p50_ms": dg.MetadataValue.float(round(s["latency_p50_ms"], 2)),
        "latency_p95_ms": dg.MetadataValue.float(round(s["latency_p95_ms"], 2)),
        "index_versions": dg.MetadataValue.int(s["index_versions"]),
        "endpoints": dg.MetadataValue.json(s["endpoints"]),
        "preview": dg.MetadataValue.md(markdown_table(s["preview"])),
        "path": dg.MetadataValue.path(str(query_log_path(data_dir))),
    }
    md.update({f"status_{k}": dg.MetadataValue.int(v) for k, v in s["statuses"].items()})
    return dg.MaterializeResult(metadata=md)


@dg.asset(group_name="serve", deps=[query_log], description="Thumbs up/down, comments and corrections on answered "
          "requests, joined to their query by trace id.")
def feedback(rag: RagSettings) -> dg.MaterializeResult:
    queries, rows = read_log(rag.settings().data_dir)
    s = feedback_stats(rows, queries)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": dg.MetadataValue.int(s["rows"]),
        "thumbs_up": dg.MetadataValue.int(s["thumbs_up"]),
        "thumbs_down": dg.MetadataValue.int(s["thumbs_down"]),
        "thumbs_down_rate": dg.MetadataValue.float(round(s["thumbs_down_rate"], 4)),
        "with_correction": dg.MetadataValue.int(s["with_correction"]),
        "traces_rated": dg.MetadataValue.int(s["traces_rated"]),
        "preview": dg.MetadataValue.md(markdown_table(s["preview"])),
    })
