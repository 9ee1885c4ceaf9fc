"""Training curves as a PNG (inline base64 in the asset's markdown metadata)."""

from __future__ import annotations

import io


def curves_png(curves: dict[str, list[float]], title: str = "MultipleNegativesRankingLoss per step") -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=90)
    for name, losses in curves.items():
        if losses:
            ax.plot(range(1, len(losses) + 1), losses, label=f"{name} ({len(losses)} steps)")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
