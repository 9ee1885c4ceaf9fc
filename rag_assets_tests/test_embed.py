"""Embedding on Ray Data against plain encode, with the real bundled model and a real local Ray."""

from pathlib import Path

import numpy as np
import pytest

from rag_assets.lib.ingest import embed
from rag_assets.lib.ingest.chunking import chunk_sections
from rag_assets.lib.ingest.sections import split_sections
from rag_assets_tests.conftest import BUNDLED_CORPUS


def assert_close_to_plain(vectors, plain, device: str) -> None:
    """fp32 on CPU matches plain encode to 1e-5; on a GPU the actors run the model in fp16 (`half()`),
    so each vector is compared by direction: cosine >= 0.999 with the fp32 one."""
    if device == "cpu":
        np.testing.assert_allclose(vectors, plain, atol=1e-5)
        return
    plain = plain / np.linalg.norm(plain, axis=1, keepdims=True)
    cosines = np.sum(vectors * plain, axis=1) / np.linalg.norm(vectors, axis=1)
    assert cosines.min() >= 0.999, cosines.min()


@pytest.fixture(scope="module")
def chunks():
    """Real chunks of one bundled page, plus short and empty-ish texts so lengths vary widely."""
    page = (BUNDLED_CORPUS / "library" / "csv.html").read_text(encoding="utf-8")
    sections = split_sections("library/csv.html", "library/csv.html", "html", page)
    got = chunk_sections(sections, 700, 50)[:150]
    ids, texts = [c.id for c in got], [c.text for c in got]
    return ids + ["short", "blank"], texts + ["csv", " "]


def test_ray_matches_plain_encode_in_input_order(ray_session, chunks):
    ids, texts = chunks
    seen = []
    # Small blocks so several arrive out of input order and on_batch sees each of them.
    got_ids, vectors, device = embed.embed_with_ray(
        ids, texts, embed.BUNDLED_MODEL, batch_size=64, on_batch=lambda i, v: seen.append((list(i), v))
    )
    plain = embed.cached_model(embed.BUNDLED_MODEL).encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    assert got_ids == ids
    assert vectors.dtype == np.float32 and vectors.shape == plain.shape == (len(texts), 384)
    # The device is the one Ray offers: a GPU when the cluster has one, else the CPU.
    assert device == ("cuda" if ray_session.cluster_resources().get("GPU", 0) else "cpu")
    assert_close_to_plain(vectors, plain.astype(np.float32), device)
    # The progress callback saw every chunk once, each with its own vector.
    assert len(seen) == -(-len(texts) // 64)
    assert sorted(i for part, _ in seen for i in part) == sorted(ids)
    row = {cid: r for r, cid in enumerate(ids)}
    for part, vecs in seen:
        assert_close_to_plain(vecs, plain[[row[i] for i in part]].astype(np.float32), device)


def test_ray_empty_input(ray_session):
    ids, vectors, device = embed.embed_with_ray([], [], embed.BUNDLED_MODEL)
    assert ids == [] and vectors.shape[0] == 0 and device == embed.torch_device()


def test_bundled_model_resolves_to_local_weights():
    path = Path(embed.resolve_model(embed.BUNDLED_MODEL))
    assert path.is_dir() and any(path.iterdir())
    assert embed.resolve_model("some/other-model") == "some/other-model"
    assert embed.torch_device() in ("cpu", "cuda")
