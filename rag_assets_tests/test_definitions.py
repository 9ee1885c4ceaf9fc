"""The code location loads: `rag_assets.definitions.defs` with the ingestion assets and the main job."""

import dagster as dg

INGESTION = {"docs", "sections", "chunks", "embeddings", "vector_index", "lexical_index"}


def test_definitions_load_with_the_ingestion_assets_and_the_main_job():
    from rag_assets.definitions import defs

    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert INGESTION <= keys
    parents = {k: {p.to_user_string() for p in graph.get(dg.AssetKey(k)).parent_keys} for k in INGESTION}
    assert parents["docs"] == set()
    assert parents["sections"] == {"docs"}
    assert parents["chunks"] == {"sections"}
    assert parents["embeddings"] == {"chunks"}
    assert parents["vector_index"] == {"embeddings"}
    assert "chunks" in parents["lexical_index"]
    assert graph.get(dg.AssetKey("embeddings")).pools == {"embedding"}  # one GPU/embedding step at a time
    job = defs.resolve_job_def("rag_pipeline")
    assert INGESTION <= {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
