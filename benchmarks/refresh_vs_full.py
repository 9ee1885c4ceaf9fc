"""Incremental refresh against a full build, on the Python 3.11 HTML docs (python3.11-doc).

1. Full build: `refresh_once()` on an empty data dir (the `rag-assets refresh` code path: change
   detection, then `dg.materialize` of the ingestion assets).
2. Edit ~1% of the pages (a paragraph appended to the first section of each) and time the same
   code path in this process.
3. Edit another ~1% and time the real command, `rag-assets refresh --json`, as a subprocess
   (process start and imports included).
4. Nothing changed: `rag-assets refresh --json` once more; it must print all zeros.

Prints both times, the ratios against the full build and the counts. Usage:
    python benchmarks/refresh_vs_full.py [--docs /usr/share/doc/python3.11/html] [--pages 0.01]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

# The page title closes inside the first <section id>: text after it is that section's own text.
FIRST_SECTION_HEADING = re.compile(r"(<section id=\"[^\"]+\">(?:(?!<section).)*?</h1>)", re.DOTALL)


def edit_pages(docs: Path, pages: list[str], tag: str) -> None:
    """Append a paragraph to each page's first section (right after its h1)."""
    for rel in pages:
        path = docs / rel
        html = path.read_text(encoding="utf-8")
        para = f"<p>Benchmark edit {tag}: this paragraph was added to measure an incremental refresh of {rel}.</p>"
        new, n = FIRST_SECTION_HEADING.subn(lambda m: m.group(1) + para, html, count=1)
        if n != 1:
            raise RuntimeError(f"{rel}: no first <section> with an <h1> to edit")
        path.write_text(new, encoding="utf-8")


def pick_pages(docs: Path, share: float, offset: int) -> list[str]:
    candidates = sorted(
        p.relative_to(docs).as_posix()
        for p in (docs / "library").glob("*.html")
        if FIRST_SECTION_HEADING.search(p.read_text(encoding="utf-8"))
    )
    total = sum(1 for _ in docs.rglob("*.html"))
    n = max(1, round(total * share))
    step = max(1, len(candidates) // (2 * n + 1))
    return candidates[offset * step :: 2 * step][:n]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", default="/usr/share/doc/python3.11/html")
    ap.add_argument("--pages", type=float, default=0.01, help="share of pages edited per round (default 0.01)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="refresh_bench_"))
    docs, data = work / "docs", work / "data"
    shutil.copytree(args.docs, docs)
    os.environ.update(RAG_DOCS_DIR=str(docs), RAG_DATA_DIR=str(data), RAG_DOCS_BASE_URL="https://docs.python.org/3.11/")
    os.environ.pop("DAGSTER_HOME", None)  # ephemeral instance: no run history from earlier benchmarks

    import ray

    from rag_assets.cli.refresh import refresh_once

    # A Ray of our own: otherwise the full build joins any local Ray it finds (another user's tests too).
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)

    try:
        t0 = time.perf_counter()
        full, _ = refresh_once()
        full_s = time.perf_counter() - t0
        n_html = sum(1 for _ in docs.rglob("*.html"))
        print(f"corpus: {n_html} HTML pages from {args.docs}; cpus: {os.cpu_count()}")
        print(f"full build (refresh_once on an empty data dir, in-process): {full_s:.1f} s  {json.dumps(full)}")

        pages = pick_pages(docs, args.pages, 0)
        edit_pages(docs, pages, "1")
        t0 = time.perf_counter()
        inc, _ = refresh_once()
        inc_s = time.perf_counter() - t0
        print(f"edited {len(pages)} pages: {', '.join(pages)}")
        print(f"refresh (same code path, in-process): {inc_s:.1f} s  ratio {inc_s / full_s:.3%}  {json.dumps(inc)}")

        pages2 = pick_pages(docs, args.pages, 1)
        edit_pages(docs, pages2, "2")
        cli_s, cli = run_cli()
        print(f"edited {len(pages2)} other pages: {', '.join(pages2)}")
        print(f"`rag-assets refresh --json` (subprocess): {cli_s:.1f} s  ratio {cli_s / full_s:.3%}  "
              f"{json.dumps(cli)}")

        idle_s, idle = run_cli()
        print(f"`rag-assets refresh --json`, nothing changed: {idle_s:.1f} s  ratio {idle_s / full_s:.3%}  "
              f"{json.dumps(idle)}")
        goal = max(inc_s, cli_s) <= 0.05 * full_s
        print(f"goal (refresh <= 5% of the full build): {'met' if goal else 'NOT met'}")
        return 0
    finally:
        ray.shutdown()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def run_cli() -> tuple[float, dict]:
    t0 = time.perf_counter()
    command = [str(Path(sys.executable).parent / "rag-assets"), "refresh", "--json"]
    out = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"rag-assets refresh failed ({out.returncode}): {out.stderr[-2000:]}")
    return seconds, json.loads(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    sys.exit(main())
