"""The seed's docs-area rerank: when the classifier is confident, the chunks of the predicted area go first."""

from __future__ import annotations

from collections.abc import Callable, Sequence


def move_area_ahead(hits: Sequence, area: str, confidence: float, threshold: float,
                    area_of: Callable[[str], str]) -> list:
    """Hits of `area` ahead of the rest, each group in its first-stage order; unchanged below the threshold."""
    if confidence < threshold:
        return list(hits)
    inside = [h for h in hits if area_of(h.source) == area]
    return inside + [h for h in hits if area_of(h.source) != area]
