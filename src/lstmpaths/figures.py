"""Figures as plain functions: arrays in, a PNG file out (matplotlib's Agg backend)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def confusion_figure(
    labels: np.ndarray, predictions: np.ndarray, class_names: list[str], path: Path
) -> Path:
    """Row-normalised confusion matrix; the off-diagonal cells that are not empty are annotated."""
    n = len(class_names)
    counts = np.zeros((n, n))
    np.add.at(counts, (labels, predictions), 1)
    rows = counts.sum(1, keepdims=True)
    share = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    size = max(6.0, n * 0.14)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ticks = np.arange(n)
    fontsize = max(3.0, min(9.0, 420 / max(n, 1)))
    ax.set_xticks(ticks, class_names, rotation=90, fontsize=fontsize)
    ax.set_yticks(ticks, class_names, fontsize=fontsize)
    for t, p in zip(*np.nonzero(counts), strict=True):
        if t != p:
            ax.add_patch(
                plt.Rectangle((p - 0.5, t - 0.5), 1, 1, fill=False, edgecolor="crimson", lw=0.8)
            )
    accuracy = float(np.trace(counts) / max(counts.sum(), 1))
    ax.set_title(f"Confusion matrix (rows: true sign), accuracy {accuracy:.1%}; red boxes: errors")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.colorbar(im, ax=ax, fraction=0.03, label="share of the true sign's sequences")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
