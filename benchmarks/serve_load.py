"""Load on `rag-assets serve` (offline extractive answerer) against the same work done in-process.

1. Builds an index of the bundled corpus in a temp data dir (or uses --data-dir), through the `refresh` path.
2. Times, in this process, what a request costs without HTTP: Retriever.search alone, and search + the
   extractive answer (the server's whole per-request work).
3. Starts the real server (`rag-assets serve`, a subprocess on 127.0.0.1) and drives it with aiohttp at
   concurrency 1, 8 and 32 on /query and /v1/chat/completions (JSON), and on /stream and the streamed chat for
   the time to the sources event. Prints p50/p95/p99 latency, requests/s, errors, and the server's overhead over
   the in-process work (difference and ratio at concurrency 1).

Usage: nice -n 10 python benchmarks/serve_load.py [--requests 40] [--data-dir DIR] [--mode hybrid] [-k 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = [
    "How do I read rows from a CSV file?", "How do I write a dictionary to a CSV file?",
    "What does csv.Sniffer do?", "How do I decode a JSON document?", "How do I pretty-print JSON?",
    "What exception does json.loads raise on invalid input?", "How do I handle exceptions in Python?",
    "What is the difference between a list and a tuple?", "How do I sort a list of objects by an attribute?",
    "How do I use a dataclass with default values?", "How do I parse a date string into a datetime?",
    "How do I run a subprocess and capture its output?", "How do I match a regular expression?",
    "How do I configure logging to a file?", "What does functools.lru_cache do?",
    "How do I iterate over two lists at once?", "How do I create a default dictionary?",
    "How do I join paths with pathlib?", "How do I define a class with a custom __repr__?",
    "What does the finally clause do?",
]
LEVELS = (1, 8, 32)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PAGES = ("library/csv.html", "library/json.html", "tutorial/errors.html", "tutorial/datastructures.html",
         "library/datetime.html", "library/functools.html", "library/pathlib.html", "howto/sorting.html")


def build_index(data_dir: Path, pages: int) -> None:
    """An index of the first `pages` pages of PAGES (from the bundled corpus), through the refresh code path."""
    from rag_assets.cli.refresh import refresh_once
    from rag_assets.defs.resources import RagSettings

    docs = data_dir.parent / "docs"
    for rel in PAGES[:pages]:
        (docs / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "data" / "corpus" / rel, docs / rel)
    rag = RagSettings(docs_dir=str(docs), data_dir=str(data_dir), docs_base_url="https://docs.python.org/3.11/",
                      ray_min_chunks=10**9)
    started = time.perf_counter()
    counts, _ = refresh_once(rag)
    print(f"index: {counts['chunks_embedded']} chunks of {pages} bundled pages in {time.perf_counter() - started:.0f}s")


def pct(values: list[float]) -> tuple[float, float, float]:
    a = np.asarray(values) * 1000
    return tuple(float(np.percentile(a, p)) for p in (50, 95, 99))


def in_process(data_dir: Path, mode: str, k: int, n: int) -> dict:
    from rag_assets.lib.generate.answer import ExtractiveGenerator
    from rag_assets.lib.retrieve.retriever import Retriever

    retriever = Retriever.open(data_dir)
    generator = ExtractiveGenerator(retriever.manifest.model)
    retriever.search("warm up", mode, k)
    generator.answer("warm up", retriever.search("csv", mode, k))
    search_s, work_s = [], []
    for i in range(n):
        q = QUESTIONS[i % len(QUESTIONS)]
        t0 = time.perf_counter()
        hits = retriever.search(q, mode, k)
        t1 = time.perf_counter()
        generator.answer(q, hits)
        t2 = time.perf_counter()
        search_s.append(t1 - t0)
        work_s.append(t2 - t0)
    return {"search": pct(search_s), "work": pct(work_s), "search_rps": n / sum(search_s), "work_rps": n / sum(work_s)}


async def one(session, url: str, path: str, q: str, mode: str, k: int,
              stream: bool) -> tuple[float, float | None, str | None]:
    """(latency, time to the sources event or None, trace id); raises on any non-200 or missing answer."""
    if path == "/v1/chat/completions":
        body = {"model": "rag-assets", "messages": [{"role": "user", "content": q}], "k": k, "mode": mode,
                "stream": stream}
    else:
        body = {"question": q, "k": k, "mode": mode}
    t0 = time.perf_counter()
    first = trace = None
    async with session.post(url + path, json=body) as r:
        if r.status != 200:
            raise RuntimeError(f"{path}: HTTP {r.status}: {(await r.text())[:200]}")
        if not stream:
            payload = await r.json()
            if not (payload.get("answer") or payload.get("choices")):
                raise RuntimeError(f"{path}: no answer")
            trace = payload["trace_id"]
        else:
            async for line in r.content:
                if first is None and line.startswith(b"data:") and b"sources" in line:
                    first = time.perf_counter() - t0
            if first is None:
                raise RuntimeError(f"{path}: no sources event")
    return time.perf_counter() - t0, first, trace


async def load(url: str, path: str, stream: bool, concurrency: int, n: int, mode: str, k: int) -> dict:
    import aiohttp

    latencies, firsts, errors, traces = [], [], [], {}
    todo = iter(range(n))

    async def worker(session):
        for i in todo:
            try:
                lat, first, trace = await one(session, url, path, QUESTIONS[i % len(QUESTIONS)], mode, k, stream)
                latencies.append(lat)
                traces[trace] = lat
                if first is not None:
                    firsts.append(first)
            except Exception as exc:  # counted and shown: the target is none at 32
                errors.append(str(exc))

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=300)) as session:
        await asyncio.gather(*(one(session, url, path, QUESTIONS[0], mode, k, stream) for _ in range(concurrency)))
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return {"lat": pct(latencies) if latencies else (0, 0, 0), "first": pct(firsts) if firsts else None,
            "rps": len(latencies) / wall, "errors": errors, "n": n, "traces": traces}


def start_server(data_dir: Path, port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_BASE_URL", "RAG_API_TOKEN")}
    env.update(RAG_DATA_DIR=str(data_dir), RAG_LLM_MODEL="extractive", PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-c", "import sys; from rag_assets.cli import main; sys.exit(main(sys.argv[1:]))",
           "serve", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    import urllib.request

    for _ in range(1200):
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited: {proc.stderr.read()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.25)
    proc.kill()
    raise RuntimeError("the server did not become ready")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=None,
                    help="a data dir with a committed index (built there and kept when it has none; default: temp)")
    ap.add_argument("--pages", type=int, default=len(PAGES), help=f"pages to index (1-{len(PAGES)})")
    ap.add_argument("--requests", type=int, default=40,
                    help="requests per endpoint at concurrency 1; twice as many (at least one each) at 8 and 32")
    ap.add_argument("--mode", default="hybrid")
    ap.add_argument("-k", type=int, default=5)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run `finally`: stop the server subprocess too

    from rag_assets.lib.index import manifest

    tmp = None
    data_dir = args.data_dir
    if data_dir is None:
        tmp = Path(tempfile.mkdtemp(prefix="serve_load_"))
        data_dir = tmp / "data"
    if manifest.read(data_dir) is None:
        build_index(data_dir.resolve(), args.pages)
    proc = None
    try:
        base = in_process(data_dir, args.mode, args.k, args.requests)
        print(f"\nin-process ({args.mode}, k={args.k}, {args.requests} questions, one at a time):")
        print(f"  Retriever.search          p50 {base['search'][0]:7.2f} ms  p95 {base['search'][1]:7.2f} ms  "
              f"{base['search_rps']:6.1f}/s")
        print(f"  search + extractive answer p50 {base['work'][0]:7.2f} ms  p95 {base['work'][1]:7.2f} ms  "
              f"{base['work_rps']:6.1f}/s")

        port = free_port()
        proc = start_server(data_dir, port)
        url = f"http://127.0.0.1:{port}"
        runs = [("/query", False), ("/v1/chat/completions", False), ("/stream", True), ("/v1/chat/completions", True)]
        print(f"\nserver at {url} (uvicorn, one process):")
        print(f"  {'endpoint':<30} {'conc':>4} {'n':>4} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'req/s':>7} "
              f"{'sources p50':>11} {'errors':>6}")
        results = {}
        for path, stream in runs:
            for c in LEVELS:
                n = args.requests if c == 1 else max(2 * args.requests, c)
                r = asyncio.run(load(url, path, stream, c, n, args.mode, args.k))
                results[(path, stream, c)] = r
                name = path + (" (stream)" if stream else "")
                first = f"{r['first'][0]:8.2f} ms" if r["first"] else "         -"
                print(f"  {name:<30} {c:>4} {n:>4} {r['lat'][0]:8.2f} {r['lat'][1]:8.2f} {r['lat'][2]:8.2f} "
                      f"{r['rps']:7.1f} {first:>11} {len(r['errors']):>6}")
                for e in r["errors"][:3]:
                    print(f"      error: {e}")
        q1 = results[("/query", False, 1)]["lat"][0]
        over = q1 - base["work"][0]
        print(f"\noverhead at concurrency 1, /query p50 over in-process search + answer p50: {over:+.2f} ms "
              f"(ratio {q1 / base['work'][0]:.3f}); over Retriever.search alone: {q1 - base['search'][0]:+.2f} ms")
        # The same requests seen from inside: client latency minus the turn's own latency in the query log
        # (retrieval + answer + log write) is what HTTP, routing, validation and JSON cost per request.
        from rag_assets.lib.serve.query_log import read_log

        logged = {q["trace_id"]: q["latency_ms"] for q in read_log(data_dir)[0]}
        c1 = results[("/query", False, 1)]["traces"]
        outside = [lat * 1000 - logged[t] for t, lat in c1.items() if t in logged]
        if outside:
            print(f"per-request time outside the turn at concurrency 1 (client latency - logged turn latency, "
                  f"{len(outside)} /query requests): p50 {np.percentile(outside, 50):.2f} ms, "
                  f"p95 {np.percentile(outside, 95):.2f} ms")
        best = max(r["rps"] for (p, s, c), r in results.items() if p == "/query")
        print(f"/query throughput at best {best:.1f} req/s vs in-process {base['work_rps']:.1f} req/s one at a time "
              f"(ratio {best / base['work_rps']:.2f}); errors at 32: "
              f"{sum(len(r['errors']) for (p, s, c), r in results.items() if c == 32)}")
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
