"""Labelled routing data: JSONL rows {"question": str, "target": 0 or 1}; 0 = needs the strong LLM."""

from __future__ import annotations

import json
from pathlib import Path

STRONG, OPEN = 0, 1  # the seed's targets: 1 = the open model answers well enough


class RouterDataError(ValueError):
    """Malformed labelled rows; `problems` maps each bad line number to what is wrong with it."""

    def __init__(self, path: Path | str, problems: dict[int, str]):
        self.path = str(path)
        self.problems = dict(sorted(problems.items()))
        shown = list(self.problems.items())[:20]
        details = "; ".join(f"line {n}: {why}" for n, why in shown)
        more = f" (and {len(self.problems) - len(shown)} more)" if len(self.problems) > len(shown) else ""
        lines = ", ".join(str(n) for n in list(self.problems)[:20])
        super().__init__(f"{self.path}: malformed rows at lines {lines}{more}: {details}")


def load_labelled(path: Path | str) -> tuple[list[str], list[int]]:
    """(questions, targets) in file order; raises RouterDataError naming every bad line (blank lines allowed)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"labelled routing file {path} does not exist")
    questions, targets, problems = [], [], {}
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            problems[n] = f"not JSON ({exc.msg})"
            continue
        if not isinstance(row, dict):
            problems[n] = "not a JSON object"
            continue
        q, t = row.get("question"), row.get("target")
        if not isinstance(q, str) or not q.strip():
            problems[n] = "'question' must be a non-empty string"
        elif isinstance(t, bool) or t not in (STRONG, OPEN):
            problems[n] = f"'target' must be 0 (strong) or 1 (open), got {t!r}"
        else:
            questions.append(q.strip())
            targets.append(int(t))
    if problems:
        raise RouterDataError(path, problems)
    if not questions:
        raise RouterDataError(path, {0: "no labelled questions in the file"})
    return questions, targets
