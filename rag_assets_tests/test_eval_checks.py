"""The blocking check that chunks.parquet, LanceDB and Tantivy hold the same chunk ids."""

import dagster as dg

from rag_assets.defs.evaluate import assets as evaluation
from rag_assets.defs.index import assets as index_assets, checks
from rag_assets.lib.index import lexical, manifest
from rag_assets.lib.evaluate.eval_data import EvalFiles
from rag_assets.lib.evaluate.pipeline import index_consistency
from rag_assets.lib.store import Layout
from rag_assets_tests.eval_fixtures import rag_settings, small_eval_set


def drop_from_tantivy(index_dir, chunk_id: str) -> None:
    index = lexical.open_index(index_dir)
    writer = index.writer(heap_size=lexical.WRITER_HEAP, num_threads=1)
    writer.delete_documents_by_term("id", chunk_id)
    writer.commit()
    writer.wait_merging_threads()


def test_consistent_index(built_index):
    _, data_dir = built_index
    result = index_consistency(Layout(data_dir))
    assert result["consistent"] and result["chunks"] == result["lancedb"] == result["tantivy"] > 0


def test_torn_index_fails_the_check_and_blocks_evaluation(copy_built_index, tmp_path, monkeypatch):
    docs_dir, data_dir = copy_built_index
    layout = Layout(data_dir)
    committed = manifest.read(data_dir)  # tear the pair readers see: its Tantivy generation
    gone = sorted(lexical.all_ids(lexical.open_index(committed.tantivy_dir)))[0]
    drop_from_tantivy(committed.tantivy_dir, gone)
    result = index_consistency(layout)
    assert not result["consistent"] and result["missing_in_tantivy"] == 1
    assert result["examples"] == {"missing_in_tantivy": [gone]}

    small_eval_set(tmp_path / "questions.jsonl", limit=1)
    monkeypatch.setenv("RAG_EVAL_PATH", str(tmp_path / "questions.jsonl"))
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    run = dg.materialize(
        [index_assets.vector_index, evaluation.eval_questions, evaluation.responses, checks.chunk_ids_consistent],
        resources={"rag": rag_settings(docs_dir, data_dir)},
        raise_on_error=False,
    )
    check = run.get_asset_check_evaluations()[0]
    assert check.check_name == "chunk_ids_consistent" and not check.passed
    assert check.metadata["missing_in_tantivy"].value == 1
    assert [e.step_key for e in run.get_step_failure_events()] == ["vector_index_chunk_ids_consistent"]
    assert not EvalFiles(layout).responses.exists()  # blocked: nothing evaluated on a torn index
    assert EvalFiles(layout).questions.exists()
