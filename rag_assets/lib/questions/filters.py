"""The filter over synthetic questions, in order: near-duplicates, answer leakage, round-trip failure.

A dropped row keeps its reason (`drop_reason`), and the counts per reason go to the asset's metadata.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

NEAR_DUPLICATE, LEAKAGE, ROUND_TRIP = "near_duplicate", "answer_leakage", "round_trip_failure"
REASONS = (NEAR_DUPLICATE, LEAKAGE, ROUND_TRIP)
DUPLICATE_COSINE = 0.95
LEAK_N = 4  # a copied 4-gram that only the gold section has gives the answer away
ROUND_TRIP_K = 10
_WORD = re.compile(r"[a-z0-9_]+")
_STOP = set("a an the of to in on for and or is are be by with as at it this that from how do does what which "
            "can i you my when why where use using into not no if its".split())


def _words(text: str) -> list[str]:
    return _WORD.findall((text or "").lower())


def _ngrams(words: Sequence[str], n: int) -> set[tuple]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def near_duplicates(rows: list[dict], vectors: np.ndarray, threshold: float = DUPLICATE_COSINE) -> int:
    """Drop a question whose cosine with an earlier kept question is >= threshold (vectors normalised)."""
    live = [i for i, r in enumerate(rows) if not r["drop_reason"]]
    if not live:
        return 0
    v = np.asarray(vectors, dtype=np.float32)[live]
    close: dict[int, list[int]] = {}  # position -> earlier positions at or above the threshold
    for start in range(0, len(live), 512):
        sims = v[start : start + 512] @ v.T
        for a, b in zip(*np.nonzero(sims >= threshold)):
            if b < start + a:
                close.setdefault(start + int(a), []).append(int(b))
    kept, dropped = set(), 0
    for pos, i in enumerate(live):
        if any(b in kept for b in close.get(pos, ())):
            rows[i]["drop_reason"] = NEAR_DUPLICATE
            dropped += 1
        else:
            kept.add(pos)
    return dropped


def leakage(rows: list[dict], section_text: dict[str, str], n: int = LEAK_N) -> int:
    """Drop a question that copies an n-gram (with 2+ content words) found in its gold section and no other."""
    wanted: dict[tuple, set[str]] = {}
    for r in rows:
        if not r["drop_reason"]:
            for g in _ngrams(_words(r["question"]), n):
                if sum(w not in _STOP for w in g) >= 2:
                    wanted.setdefault(g, set())
    for source, text in section_text.items():  # document frequency of the questions' n-grams only
        for g in _ngrams(_words(_body(text)), n) & wanted.keys():
            wanted[g].add(source)
    dropped = 0
    for r in rows:
        if r["drop_reason"]:
            continue
        grams = [g for g in _ngrams(_words(r["question"]), n) if g in wanted]
        if any(wanted[g] == {r["source"]} for g in grams):
            r["drop_reason"] = LEAKAGE
            dropped += 1
    return dropped


def _body(text: str) -> str:
    """Section text without its heading line: asking about a heading is what users do, not leakage."""
    return (text or "").split("\n", 1)[1] if "\n" in (text or "") else ""


def round_trip(rows: list[dict], rankers: Sequence[Callable[[list[str]], list[list[str]]]]) -> int:
    """Drop a question when its gold section is in the top-k of none of the rankers (each maps questions to
    their ranked section sources)."""
    todo = [r for r in rows if not r["drop_reason"]]
    if not todo or not rankers:
        return 0
    found = [False] * len(todo)
    for ranker in rankers:
        for i, ranked in enumerate(ranker([r["question"] for r in todo])):
            found[i] = found[i] or todo[i]["source"] in ranked
    for r, ok in zip(todo, found):
        if not ok:
            r["drop_reason"] = ROUND_TRIP
    return found.count(False)


def counts(rows: Sequence[dict]) -> dict:
    c = Counter(r["drop_reason"] for r in rows if r["drop_reason"])
    return {reason: c.get(reason, 0) for reason in REASONS}
