"""Figure files: palette PNGs, the incrementally drawn GIF, and the compact paths.html."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from lstmpaths import figures as fig  # noqa: E402


def _codes(n: int = 40, t: int = 30) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, t, 2)).cumsum(1), np.arange(n) % 4


def test_figures_are_saved_as_palette_pngs(tmp_path: Path) -> None:
    codes, labels = _codes()
    path = fig.paths_figure(codes, labels, list("abcd"), tmp_path / "p.png", "t")
    with Image.open(path) as image:
        assert image.mode == "P" and image.size == (1320, 1100)


def test_animation_has_a_frame_per_step_group_and_the_heads_move(tmp_path: Path) -> None:
    codes, _ = _codes()
    path = fig.paths_animation(codes, tmp_path / "a.gif", "Training paths", frames=10)
    with Image.open(path) as gif:
        assert gif.n_frames == 10
        frames = []
        for i in (0, gif.n_frames - 1):
            gif.seek(i)
            frames.append(np.asarray(gif.convert("RGB"), dtype=int))
    # later frames carry more ink (the paths grew), and the title changed
    ink = [(255 * 3 - f.sum(-1)).sum() for f in frames]
    assert ink[1] > 1.3 * ink[0]


def test_sweep_html_loads_plotly_from_its_cdn_and_stays_small(tmp_path: Path) -> None:
    codes, labels = _codes(400, 90)
    ids = [f"rec{i}" for i in range(400)]
    inline = fig.interactive_paths(
        codes, labels, labels, ids, list("abcd"), tmp_path / "i.html", "t"
    )
    cdn = fig.interactive_paths(
        codes, labels, labels, ids, list("abcd"), tmp_path / "c.html", "t", plotlyjs="cdn"
    )
    text = cdn.read_text()
    assert "cdn.plot.ly" in text and "rec399" in text
    assert inline.stat().st_size > 3_000_000  # plotly.js itself
    # 400 paths x 47 points (46 steps and a break) as base64 float32, about 200 KB; the hover
    # texts are built in the browser, not stored per point
    assert '"bdata"' in text
    assert cdn.stat().st_size < 4 / 3 * 400 * 47 * 2 * 4 + 100_000
