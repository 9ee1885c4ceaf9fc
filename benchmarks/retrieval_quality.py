"""Retrieval quality on a real docs corpus: lexical, semantic, hybrid, tuned hybrid and rerank.

PLACEHOLDER (build step only; the evaluation follows).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from rag_assets.lib.ingest import stages  # noqa: E402
from rag_assets.lib.index import manifest  # noqa: E402
from rag_assets.lib.settings import Settings  # noqa: E402
from rag_assets.lib.store import Layout  # noqa: E402

PY_DOCS = Path("/usr/share/doc/python3.11/html")
PY_BASE_URL = "https://docs.python.org/3.11/"


def subset_docs(docs: Path, share: float, out: Path) -> Path:
    """A deterministic page subset (by a hash of the relative path) copied to `out`, for a smaller corpus."""
    import hashlib
    import shutil

    if share >= 1.0:
        return docs
    for path in sorted(docs.rglob("*")):
        rel = path.relative_to(docs).as_posix()
        if path.is_file() and (not rel.endswith(".html")
                               or int(hashlib.sha1(rel.encode()).hexdigest(), 16) % 1000 < share * 1000):
            target = out / rel
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
    return out


def build(docs: Path, data_dir: Path, base_url: str) -> float:
    """Ingest the docs into data_dir once; a rerun reuses everything (embedding resumes from its cache)."""
    t0 = time.perf_counter()
    settings = Settings.from_env(docs_dir=docs, docs_base_url=base_url, data_dir=data_dir)
    layout = Layout(settings.data_dir)
    if manifest.read(data_dir) is not None and layout.embeddings.exists():
        return 0.0
    for name, step in [
        ("docs", lambda: stages.build_docs(settings, layout)),
        ("sections", lambda: stages.build_sections(layout)),
        ("chunks", lambda: stages.build_chunks(layout, settings.chunk_size, settings.chunk_overlap)),
        # In-process (no Ray): fewer processes on a shared machine, and resumable slice by slice.
        ("embeddings", lambda: stages.build_embeddings(layout, settings.embedding_model, None, 10**9)),
        ("vector_index", lambda: stages.build_vector_index(layout)),
        ("lexical_index", lambda: stages.build_lexical_index(layout)),
    ]:
        t = time.perf_counter()
        stats = step()
        print(f"  {name}: {time.perf_counter() - t:.1f} s {({k: v for k, v in stats.items() if isinstance(v, (int, float))})}", flush=True)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--docs", type=Path, default=PY_DOCS)
    ap.add_argument("--base-url", default=PY_BASE_URL)
    ap.add_argument("--data-dir", type=Path, default=Path("/tmp/rag_retrieval_quality"))
    ap.add_argument("--page-share", type=float, default=1.0, help="index this share of the pages (hash-picked)")
    ap.add_argument("--build-only", action="store_true")
    args = ap.parse_args()
    docs = subset_docs(args.docs, args.page_share, args.data_dir / "docs_subset")
    print(f"build: {build(docs, args.data_dir, args.base_url):.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
