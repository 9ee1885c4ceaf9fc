"""Embedding throughput: the `embeddings` asset's Ray Data path against plain `SentenceTransformer.encode`.

Both embed the same chunks (built by the project's own docs -> sections -> chunks code) with the same
model on this machine. Runs are interleaved (a, b, a, b, ...) so load from other processes hits both.

    python benchmarks/embed_throughput.py                 # full Python 3.11 docs (~19k chunks)
    python benchmarks/embed_throughput.py --limit 3000    # a short dev run
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

from rag_assets.lib.ingest import embed, stages as ingest  # noqa: E402
from rag_assets.lib.ingest.chunking import chunk_sections  # noqa: E402
from rag_assets.lib.ingest.docs import load_documents  # noqa: E402
from rag_assets.lib.ray_cluster import ensure_ray  # noqa: E402
from rag_assets.lib.ingest.sections import split_sections  # noqa: E402
from rag_assets.lib.store import Layout, read_table, write_table  # noqa: E402

DEFAULT_DOCS = "/usr/share/doc/python3.11/html"


def build_chunks(docs_dir: str, size: int, overlap: int, limit: int | None):
    """Chunks through the project's code path; stops parsing once `limit` chunks exist."""
    documents = load_documents(docs_dir).documents
    sections, used, count = [], 0, 0
    for d in documents:
        mine = split_sections(d.doc_id, d.url, d.format, d.content)
        sections.extend(mine)
        used += 1
        # Chunks never cross a section, so each document's count is known on its own.
        count += len(chunk_sections(mine, size, overlap)) if limit else 0
        if limit and count >= limit:
            break
    return chunk_sections(sections, size, overlap)[: limit or None], used


def asset_embed(chunks_table: pa.Table, model: str, root: Path) -> tuple[dict, np.ndarray]:
    """The `embeddings` asset's code path on a fresh layout (nothing to reuse): stats and vectors."""
    layout = Layout(root)
    write_table(layout.chunks, chunks_table)
    stats = ingest.build_embeddings(layout, model, ray_min_chunks=0)  # always Ray Data, as the asset above 0
    t = read_table(layout.embeddings)
    return stats, t.column("vector").combine_chunks().flatten().to_numpy().reshape(t.num_rows, -1)


class ProcWatcher:
    """This process and its descendants (the Ray processes it started), sampled every `interval` s:
    peak resident memory (VmHWM) and CPU seconds. CPU seconds do not depend on how much of a shared
    machine the run got, so they compare the two paths' efficiency even under load."""

    def __init__(self, interval: float = 0.5):
        self.interval, self._stop = interval, threading.Event()
        self.peak_kb: dict[tuple, int] = {}
        self.cpu_ticks: dict[int, int] = {}  # last seen per pid: a process that exited keeps its total
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self):
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self):
        with self._lock:
            for pid, name, kb, ticks in _process_tree(os.getpid()):
                self.peak_kb[(pid, name)] = max(kb, self.peak_kb.get((pid, name), 0))
                self.cpu_ticks[pid] = max(ticks, self.cpu_ticks.get(pid, 0))

    def cpu_seconds(self) -> float:
        self.sample()
        return sum(self.cpu_ticks.values()) / os.sysconf("SC_CLK_TCK")

    def largest_child(self) -> tuple[str, float]:
        kids = {k: v for k, v in self.peak_kb.items() if k[0] != os.getpid()}
        if not kids:
            return "-", 0.0
        (pid, name), kb = max(kids.items(), key=lambda kv: kv[1])
        return f"{name} (pid {pid})", kb / 1024


def _process_tree(root: int):
    """(pid, name, VmHWM kB, utime+stime ticks) of `root` and every descendant."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stats[int(entry)] = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
    parent = {pid: int(st[st.rindex(")") + 2 :].split()[1]) for pid, st in stats.items()}
    for pid, st in stats.items():
        p = pid
        while p in parent and p != root:
            p = parent[p]
        if p != root:
            continue
        fields = st[st.rindex(")") + 2 :].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime
        try:
            hwm = next(
                int(line.split()[1])
                for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                if line.startswith("VmHWM:")
            )
        except (OSError, StopIteration):
            hwm = 0
        yield pid, st[st.index("(") + 1 : st.rindex(")")], hwm, ticks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", default=DEFAULT_DOCS, help="docs folder (default: the Python 3.11 HTML docs)")
    ap.add_argument("--limit", type=int, default=None, help="embed only the first N chunks")
    ap.add_argument("--repeats", type=int, default=2, help="interleaved (plain, asset) pairs")
    ap.add_argument("--model", default=embed.BUNDLED_MODEL)
    ap.add_argument("--chunk-size", type=int, default=700)
    ap.add_argument("--chunk-overlap", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=32, help="plain encode batch size (library default 32)")
    args = ap.parse_args()

    t0 = time.perf_counter()
    chunks, used = build_chunks(args.docs, args.chunk_size, args.chunk_overlap, args.limit)
    texts, n = [c.text for c in chunks], len(chunks)
    table = pa.Table.from_pylist([asdict(c) for c in chunks])
    lengths = [len(t) for t in texts]
    print(f"corpus: {args.docs}: {n} chunks from {used} documents, mean {np.mean(lengths):.0f} chars "
          f"(chunk {args.chunk_size}/{args.chunk_overlap}), built in {time.perf_counter() - t0:.1f} s")

    device = embed.torch_device()
    t0 = time.perf_counter()
    model = embed.load_model(args.model, device)
    model.encode(texts[:8], batch_size=args.batch_size)  # first-call warm-up, as the actor's model load does
    print(f"model: {args.model} on {device}, loaded in {time.perf_counter() - t0:.1f} s")

    t0 = time.perf_counter()
    how = ensure_ray()
    print(f"ray start: {time.perf_counter() - t0:.2f} s ({how})")

    tmp = tempfile.TemporaryDirectory(prefix="embed_bench_")
    with ProcWatcher() as procs, tmp:
        # Fixed cost of one asset call: Ray Data planning, actor start and model load, one tiny block.
        t0 = time.perf_counter()
        asset_embed(table.slice(0, 32), args.model, Path(tmp.name) / "warm")
        print(f"actor start + fixed cost per call (32 chunks): {time.perf_counter() - t0:.2f} s")

        plain_s, asset_s, plain_cpu, asset_cpu = [], [], [], []
        for r in range(args.repeats):
            c0, t0 = procs.cpu_seconds(), time.perf_counter()
            plain = model.encode(texts, batch_size=args.batch_size, normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=False)
            plain_s.append(time.perf_counter() - t0)
            c1, t0 = procs.cpu_seconds(), time.perf_counter()
            stats, vectors = asset_embed(table, args.model, Path(tmp.name) / f"run{r}")
            asset_s.append(time.perf_counter() - t0)
            plain_cpu.append(c1 - c0)
            asset_cpu.append(procs.cpu_seconds() - c1)
            asset_device = stats["device"]
            diff = float(np.abs(plain - vectors).max())
            print(f"run {r + 1}: (a) plain encode {n / plain_s[-1]:7.1f} chunks/s ({plain_s[-1]:.1f} s, "
                  f"{plain_cpu[-1]:.0f} cpu-s)  (b) asset path {n / asset_s[-1]:7.1f} chunks/s "
                  f"({asset_s[-1]:.1f} s, {asset_cpu[-1]:.0f} cpu-s)  b/a {plain_s[-1] / asset_s[-1]:.3f}  "
                  f"max|diff| {diff:.2e}  load {os.getloadavg()[0]:.1f}", flush=True)

    a, b = n / statistics.median(plain_s), n / statistics.median(asset_s)
    print(f"\nchunks: {n}  device: {asset_device}  cpus: {os.cpu_count()}  repeats: {args.repeats}")
    print(f"(a) plain SentenceTransformer.encode (batch {args.batch_size}): {a:.1f} chunks/s (median)")
    print(f"(b) `embeddings` asset path (build_embeddings): {b:.1f} chunks/s (median)")
    print(f"ratio b/a: {b / a:.3f} (median); per pair: "
          + ", ".join(f"{p / q:.3f}" for p, q in zip(plain_s, asset_s)) + " (goal >= 0.9)")
    print(f"CPU seconds per 1000 chunks, this process and its Ray processes: (a) "
          f"{1000 * statistics.median(plain_cpu) / n:.1f}  (b) {1000 * statistics.median(asset_cpu) / n:.1f}  "
          f"ratio a/b {statistics.median(plain_cpu) / statistics.median(asset_cpu):.3f}")
    name, mb = procs.largest_child()
    print(f"peak RSS: driver {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; "
          f"largest Ray process {name} {mb:.0f} MB")


if __name__ == "__main__":
    main()
