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
        assert image.mode == "P" and image.size == (1200, 1000)


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


def test_animation_heads_are_solid_dots_without_a_ring_of_blends(tmp_path: Path) -> None:
    # recordings that stand still draw no line: a frame's only colour is its heads' step colour
    grid = np.stack(np.meshgrid(np.arange(6.0), np.arange(5.0)), -1).reshape(-1, 1, 2)
    still = np.repeat(grid, 12, axis=1)
    path = fig.paths_animation(still, tmp_path / "a.gif", "Still", frames=4)
    with Image.open(path) as gif:
        gif.seek(gif.n_frames - 1)
        rgb = np.asarray(gif.convert("RGB"), dtype=int).reshape(-1, 3)
    coloured = rgb[(rgb.max(1) - rgb.min(1)) > 8]  # not white, black or grey (text, axes)
    colours = np.unique(coloured, axis=0)
    assert len(coloured) >= 30 * 4 and len(colours) == 1


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
    assert "cdn.plot.ly" in text
    assert inline.stat().st_size > 3_000_000  # plotly.js itself
    # 400 paths x 47 points (46 steps and a break) as 14-bit grid steps, deflated: less than
    # their base64 bytes uncompressed (150 KB); no float arrays, no hover string per point
    assert '"bdata"' not in text and "DecompressionStream" in text
    assert cdn.stat().st_size < 4 / 3 * 400 * 47 * 2 * 2 + 30_000
    # the hover texts' lists travel deflated, every recording in them once
    lists = _page_lists(text)
    assert lists["ids"] == ids and lists["predicted"] == [list("abcd")[c] for c in labels]
    assert sorted(i for m in lists["members"] for i in m) == list(range(400))
    assert "rec399" not in text  # not as text beside them


def _page_lists(page: str) -> dict:
    """The per-recording lists a paths.html carries (`info.lists`: deflated JSON in base64)."""
    import base64
    import json
    import re
    import zlib

    encoded = re.search(r'"lists": "([A-Za-z0-9+/=]+)"', page).group(1)
    return json.loads(zlib.decompress(base64.b64decode(encoded)))


def test_grid_points_come_back_within_half_a_grid_step() -> None:
    points = np.array([[0.0, -1.0], [np.nan, np.nan], [2.0, 3.0], [0.5, 1.0], [1e-9, 5.0]])
    grid, low, span = fig.grid_points(points)
    assert grid.dtype == np.uint16 and grid.shape == (2, 5)
    np.testing.assert_allclose(low, [0, -1]) and np.testing.assert_allclose(span, [2, 6])
    assert list(grid[:, 1]) == [fig.GRID + 1] * 2  # the break between two paths
    assert list(grid[:, 0]) == [0, 0] and list(grid[:, 2]) == [fig.GRID, round(4 / 6 * fig.GRID)]
    back = low[:, None] + grid * span[:, None] / fig.GRID
    real = [0, 2, 3, 4]
    assert np.abs(back[:, real] - points[real].T).max() <= span.max() / (2 * fig.GRID)
    flat, _, flat_span = fig.grid_points(np.array([[1.0, 1.0], [1.0, 2.0]]))
    assert flat_span[0] == 1.0 and list(flat[0]) == [0, 0]  # a constant axis does not divide by 0


def test_delta_planes_store_each_step_zigzag_coded_high_bytes_first() -> None:
    grid = np.array([[0, 3, 1, 16383], [5, 5, 4, 300]], np.uint16)
    # x steps 0, 3, -2, 16382 -> 0, 6, 3, 32764 (0x7FFC); y steps 5, 0, -1, 296 -> 10, 0, 1, 592
    high, low = [0, 0, 0, 0x7F, 0, 0, 0, 2], [0, 6, 3, 0xFC, 10, 0, 1, 0x50]
    assert fig.delta_planes(grid) == bytes(high + low)


def test_delta_planes_give_back_every_position_and_shrink_smooth_paths() -> None:
    import zlib

    walk = np.random.default_rng(0).normal(size=(2, 5000)).cumsum(1)
    grid, _, _ = fig.grid_points(walk.T)
    grid[:, ::47] = fig.GRID + 1  # breaks between paths jump the whole grid
    data = np.frombuffer(fig.delta_planes(grid), np.uint8).reshape(2, -1).astype(np.int64)
    zigzag = (data[0] << 8) | data[1]
    steps = (zigzag >> 1) ^ -(zigzag & 1)
    np.testing.assert_array_equal(steps.reshape(2, -1).cumsum(1), grid)  # as the page adds up
    raw = grid.astype("<u2").tobytes()
    assert len(zlib.compress(fig.delta_planes(grid), 9)) < 0.85 * len(zlib.compress(raw, 9))


def _padded_codes(n: int = 300, t: int = 40) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random-walk paths whose first 0-19 steps (`padding`) lie on one shared trajectory."""
    codes, labels = _codes(n, t)
    padding = np.random.default_rng(1).integers(0, 20, n)
    codes[:, :20] = np.where(
        (np.arange(20) < padding[:, None])[..., None],
        np.linspace(-15, 15, 20)[:, None],
        codes[:, :20],
    )
    return codes, labels, padding


def test_shared_padding_is_drawn_by_the_last_paths_only() -> None:
    codes, _, padding = _padded_codes()
    starts = fig.shared_starts(codes, copies=40)
    assert starts[-40:].tolist() == [0] * 40
    # the others start on their last shared point (so the line into their own steps is drawn)
    assert starts[:-40].tolist() == np.maximum(padding[:-40] - 1, 0).tolist()


def test_paths_sharing_their_padding_look_the_same_drawn_once(tmp_path: Path, monkeypatch) -> None:
    codes, labels, _ = _padded_codes()
    names = list("abcd")
    fig.paths_figure(codes, labels, names, tmp_path / "once.png", "t")
    fig.hands_figure(codes, labels < 2, tmp_path / "hands_once.png", "t")
    monkeypatch.setattr(fig, "shared_starts", lambda xy, copies=40: np.zeros(len(xy), int))
    fig.paths_figure(codes, labels, names, tmp_path / "every.png", "t")
    fig.hands_figure(codes, labels < 2, tmp_path / "hands_every.png", "t")
    # measured: 0.05 grey levels on average; 0.21 when the shared part is drawn by no path
    for once, every in (("once", "every"), ("hands_once", "hands_every")):
        a, b = (
            np.asarray(Image.open(tmp_path / f"{name}.png").convert("L"), dtype=float)
            for name in (once, every)
        )
        assert np.abs(a - b).mean() < 0.1, (once, np.abs(a - b).mean())


def test_misclassified_figures_share_one_backdrop_and_draw_it_unchanged(tmp_path: Path) -> None:
    codes, labels = _codes(n=60)
    predictions = (labels + 1) % labels.max()
    picks, train = np.arange(5), np.arange(10, 60)
    names = [f"s{c}" for c in range(labels.max() + 1)]

    def draw(name: str, **backdrop) -> np.ndarray:
        fig.misclassified_figure(
            codes, labels, predictions, picks, names, tmp_path / name, "t", background=train,
            **backdrop,
        )  # fmt: skip
        return np.asarray(Image.open(tmp_path / name).convert("RGB"))

    # the backdrop a figure draws itself is the one draw_paths_figures hands to all three
    shared = fig.misclassified_backdrop(codes, train)
    assert np.array_equal(draw("own.png"), draw("shared.png", backdrop=shared))
    # and the figure shows the image it is given
    red = np.zeros_like(shared)
    red[..., 0], red[..., 3] = 255, 255
    pixels = draw("red.png", backdrop=red).astype(int)
    reddish = (pixels[..., 0] > 240) & (pixels[..., 1:] < 20).all(-1)
    assert reddish.mean() > 0.2
