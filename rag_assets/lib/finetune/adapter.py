"""The cheap option: a query-side linear adapter over the frozen model.

Queries are embedded as normalize(q + q @ A) with A a d x d matrix (zero = the base model); documents keep the
base model's vectors, so the corpus is never re-embedded. A is trained with the same MultipleNegativesRankingLoss
as the full fine-tune, over vectors the frozen model computes once, with weight decay pulling A back to zero.

On disk an adapter is a directory holding `query_adapter.npy` (A) and `rag_model.json` (its manifest, naming the
base model). The query hook lives in `rag_assets.lib.ingest.embed`: an adapter directory used as an embedding
model embeds documents with its base model and queries with the adapter applied (see embed.document_model and
embed.embed_query), so every retrieval path (Retriever, evaluation, experiments, serving) picks it up.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from rag_assets.lib.finetune.mining import Triple
from rag_assets.lib.finetune.train import mnrl_loss, plan_batches
from rag_assets.lib.ingest.embed import ADAPTER_FILE, apply_adapter


@dataclass(frozen=True)
class AdapterConfig:
    batch_size: int = 32
    epochs: int = 20  # each epoch costs milliseconds: the vectors are precomputed
    learning_rate: float = 1e-3
    weight_decay: float = 0.01  # towards A = 0, the base model
    scale: float = 20.0
    hard_negatives: bool = True
    seed: int = 42

    def as_dict(self) -> dict:
        return asdict(self)


def fit_adapter(triples: list[Triple], base_model, cfg: AdapterConfig, out_dir: Path, encode) -> dict:
    """Train A on frozen vectors (encode(model, texts) -> normalized float32 rows) and save it into out_dir."""
    import torch

    t0 = time.perf_counter()
    texts = sorted({t.positive for t in triples} | {t.negative for t in triples if t.negative})
    index = {text: i for i, text in enumerate(texts)}
    docs = torch.from_numpy(encode(base_model, texts))
    queries = torch.from_numpy(encode(base_model, [t.question for t in triples]))
    encode_seconds = time.perf_counter() - t0
    torch.manual_seed(cfg.seed)
    dim = queries.shape[1]
    a = torch.zeros(dim, dim, requires_grad=True)
    optimizer = torch.optim.AdamW([a], lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    batches = plan_batches(len(triples), cfg.batch_size, cfg.epochs, 0, cfg.seed)
    losses = []
    t1 = time.perf_counter()
    for rows in batches:
        q = queries[rows]
        q = torch.nn.functional.normalize(q + q @ a, dim=-1)
        cols = [index[triples[i].positive] for i in rows]
        doc_sources = [triples[i].source for i in rows]
        if cfg.hard_negatives:
            negs = [i for i in rows if triples[i].negative]
            cols += [index[triples[i].negative] for i in negs]
            doc_sources += [triples[i].negative_source for i in negs]
        loss = mnrl_loss(torch, q, docs[cols], doc_sources, [triples[i].source for i in rows], cfg.scale)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    matrix = a.detach().numpy().astype(np.float32)
    out_dir.mkdir(parents=True, exist_ok=True)
    np.save(out_dir / ADAPTER_FILE, matrix)
    return {"losses": losses, "steps": len(batches), "seconds": time.perf_counter() - t1,
            "encode_seconds": encode_seconds, "device": "cpu", "workers": 1,
            "pairs_seen": sum(len(b) for b in batches), "adapter_norm": float(np.linalg.norm(matrix))}


def query_vectors(base_vectors: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    return apply_adapter(base_vectors, matrix)
