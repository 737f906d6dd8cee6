"""Figures as plain functions: arrays in, a PNG file out (matplotlib's Agg backend)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
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
    return _save(fig, path)


# --------------------------------------------------------------------------- paths

TIME_CMAP = "viridis"


def _display(codes: np.ndarray, log1p: bool) -> np.ndarray:
    from lstmpaths.metrics import log1p_display

    return log1p_display(codes) if log1p else codes


def _axes_labels(ax, log1p: bool, k: int = 2) -> None:
    name = "sign(z)·log1p(|z|)" if log1p else "z"
    ax.set_xlabel(f"{name}, bottleneck unit 1")
    ax.set_ylabel(f"{name}, bottleneck unit 2")
    if k == 3:
        ax.set_zlabel(f"{name}, unit 3")


# The figures every paths run draws (43 times in a sweep) are rendered at 100 dpi: the 12 x 10
# inch path figures are 1,200 x 1,000 pixels (the study's are 973 x 843), the 8-point sign labels
# 11 pixels high; at 110 dpi a real job's PNGs were 14% larger. A report's few figures keep 110.
RUN_DPI = 100


def _save(fig, path: Path, dpi: int = 110, tight: bool = True) -> Path:
    """Render at `dpi` and write a 256-colour palette PNG (no dithering), encoded once.
    `tight`: fit the layout to the labels first (False: the figure placed its axes itself).

    Scatter figures of 100,000 translucent points compress badly as true colour: measured on the
    real data's paths.png, 1,754 KB -> 431 KB, with no difference visible at 100%."""
    from PIL import Image

    if tight:
        fig.tight_layout()
    fig.set_dpi(dpi)
    fig.canvas.draw()
    rgb = Image.fromarray(np.asarray(fig.canvas.buffer_rgba())).convert("RGB")
    plt.close(fig)
    rgb.quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(path)
    return path


def _finish_plane(fig, ax, path: Path, title: str, log1p: bool) -> Path:
    """Common ending of the 2-D path figures: margins, axis names, title, save."""
    ax.margins(0.04)
    _axes_labels(ax, log1p)
    ax.set_title(title, fontsize=13)
    return _save(fig, path, dpi=RUN_DPI)


def _spread(signs: np.ndarray, at_most: int) -> np.ndarray:
    """At most `at_most` of the signs, spread evenly over the list (for labels)."""
    if len(signs) <= at_most:
        return signs
    return signs[np.linspace(0, len(signs) - 1, at_most).round().astype(int)]


def _label_ends(
    ax,
    ends: np.ndarray,
    labels: np.ndarray,
    class_names: list[str],
    max_labels: int,
    fontsize: float,
) -> None:
    """One name per sign, at the median end point of its paths (never one per path)."""
    from matplotlib import patheffects

    for c in _spread(np.unique(labels), max_labels):
        x, y = np.median(ends[labels == c], axis=0)[:2]
        text = ax.text(x, y, class_names[c], fontsize=fontsize, ha="center", va="bottom", zorder=5)
        text.set_path_effects([patheffects.withStroke(linewidth=2.2, foreground="white")])


def shared_starts(xy: np.ndarray, copies: int = 40) -> np.ndarray:
    """Per path (xy: (N, T, d)), the first step a figure needs to draw.

    Front-padded recordings begin on one shared trajectory (`metrics.shared_prefix`: 37% of
    the real data's points). Drawn N times, those points look the same as `copies` overlapping
    draws, which already reach full opacity at the figures' alphas (lines at 0.12:
    1 - 0.88^40 = 99.4%). So all paths but the last `copies` start at the last point they
    share; the last ones, drawn on top as before, keep the whole path."""
    from lstmpaths.metrics import shared_prefix

    starts = np.maximum(shared_prefix(xy) - 1, 0)
    starts[max(0, len(xy) - copies) :] = 0
    return starts


def _from_starts(paths: np.ndarray, starts: np.ndarray) -> list[np.ndarray]:
    """Each path from its start step on (`shared_starts`), for a line collection; a path with
    fewer than two points left draws no line and is left out."""
    return [p[s:] for p, s in zip(paths, starts, strict=True) if len(p) - s >= 2]


def paths_figure(
    codes: np.ndarray,
    labels: np.ndarray,
    class_names: list[str],
    path: Path,
    title: str,
    log1p: bool = True,
    max_labels: int = 94,
    highlight: dict[int, str] | None = None,
) -> Path:
    """Paths in the bottleneck plane: points coloured by time step, a thin dark line per path.

    codes: (N, T, >=2). highlight: {class index: colour} draws those signs' lines in colour
    (the sign-group figures); points keep the time colouring so direction stays readable.
    """
    from matplotlib.collections import LineCollection

    xy = _display(codes[..., :2], log1p)
    n, t, _ = xy.shape
    starts = shared_starts(xy)
    fig, ax = plt.subplots(figsize=(12, 10))
    line_colors = [highlight.get(int(c), "0.2") for c in labels] if highlight else "0.15"
    ax.add_collection(
        LineCollection(
            _from_starts(xy, starts),
            colors=line_colors,
            linewidths=0.5 if not highlight else 0.9,
            alpha=(0.12 if n > 300 else 0.3) if not highlight else 0.6,
            zorder=1,
        )
    )
    size = 2.2 if n > 300 else 6
    steps = np.broadcast_to(np.arange(t), (n, t))
    drawn = steps >= starts[:, None]
    sc = ax.scatter(
        xy[..., 0][drawn],
        xy[..., 1][drawn],
        c=steps[drawn],
        cmap=TIME_CMAP,
        vmin=0,
        vmax=t - 1,
        s=size,
        alpha=0.6 if n > 300 else 0.8,
        linewidths=0,
        zorder=2,
        rasterized=True,
    )
    fig.colorbar(sc, ax=ax, fraction=0.04, pad=0.02, label="time step")
    _label_ends(
        ax, xy[:, -1], labels, class_names, max_labels, 8 if len(np.unique(labels)) > 20 else 11
    )
    if highlight:
        from matplotlib.lines import Line2D

        handles = [
            Line2D([], [], color=col, lw=2, label=class_names[c]) for c, col in highlight.items()
        ]
        ax.legend(handles=handles, loc="best", fontsize=10)
    ax.autoscale()
    return _finish_plane(fig, ax, path, title, log1p)


def last_step_figure(
    codes: np.ndarray,
    labels: np.ndarray,
    class_names: list[str],
    path: Path,
    title: str,
    log1p: bool = True,
) -> Path:
    """The last-step points only: the 2-D image of what the classification layer sees."""
    xy = _display(codes[:, -1, :2], log1p)
    fig, ax = plt.subplots(figsize=(12, 10))
    cmap = plt.get_cmap("tab20")
    ax.scatter(xy[:, 0], xy[:, 1], c=[cmap(c % 20) for c in labels], s=14, alpha=0.8, linewidths=0)
    _label_ends(ax, xy, labels, class_names, 94, 8 if len(np.unique(labels)) > 20 else 11)
    return _finish_plane(fig, ax, path, title, log1p)


def paths_3d_figure(
    codes: np.ndarray,
    labels: np.ndarray,
    class_names: list[str],
    path: Path,
    title: str,
    log1p: bool = True,
    max_labels: int = 30,
) -> Path:
    xyz = _display(codes[..., :3], log1p)
    n, t, _ = xyz.shape
    starts = shared_starts(xyz)
    fig = plt.figure(figsize=(12, 10))
    ax = fig.add_subplot(projection="3d")
    from mpl_toolkits.mplot3d.art3d import Line3DCollection

    ax.add_collection3d(
        Line3DCollection(
            _from_starts(xyz, starts), colors="0.15", linewidths=0.4, alpha=0.12 if n > 300 else 0.3
        )
    )
    steps = np.broadcast_to(np.arange(t), (n, t))
    drawn = steps >= starts[:, None]
    sc = ax.scatter(
        *(xyz[..., i][drawn] for i in range(3)),
        c=steps[drawn],
        cmap=TIME_CMAP,
        s=1.5 if n > 300 else 6,
        alpha=0.5 if n > 300 else 0.8,
        linewidths=0,
        rasterized=True,
    )
    for c in _spread(np.unique(labels), max_labels):
        x, y, z = np.median(xyz[labels == c, -1], axis=0)
        ax.text(x, y, z, class_names[c], fontsize=8)
    fig.colorbar(sc, ax=ax, fraction=0.03, pad=0.06, label="time step")
    _axes_labels(ax, log1p, k=3)
    ax.view_init(elev=22, azim=-60)
    ax.set_title(title, fontsize=13)
    return _save(fig, path, dpi=RUN_DPI)


def hands_figure(
    codes: np.ndarray, one_handed: np.ndarray, path: Path, title: str, log1p: bool = True
) -> Path:
    """Paths coloured by one- (cyan) vs two-handed (magenta) sign, the study's colours."""
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D

    xy = _display(codes[..., :2], log1p)
    fig, ax = plt.subplots(figsize=(12, 10))
    for mask, colour in ((one_handed, "c"), (~one_handed, "m")):
        lines = _from_starts(xy[mask], shared_starts(xy[mask]))
        ax.add_collection(LineCollection(lines, colors=colour, linewidths=0.5, alpha=0.35))
    ax.autoscale()
    ax.legend(
        handles=[
            Line2D([], [], color="c", label=f"one-handed ({one_handed.sum()})"),
            Line2D([], [], color="m", label=f"two-handed ({(~one_handed).sum()})"),
        ],
        loc="best",
    )
    return _finish_plane(fig, ax, path, title, log1p)


def ratio_histogram(ratios: np.ndarray, threshold: float, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.hist(ratios, bins=60, color="0.4")
    ax.axvline(threshold, color="crimson", lw=1.5, label=f"threshold {threshold:g}")
    ax.set_xlabel(
        "left-hand / right-hand movement (mean of the smallest frame-to-frame differences)"
    )
    ax.set_ylabel("sequences")
    ax.set_title("Hand-usage heuristic: below the threshold = one-handed")
    ax.legend()
    return _save(fig, path, dpi=RUN_DPI)


def _padded_extent(xy: np.ndarray) -> tuple[float, float, float, float]:
    """(x0, x1, y0, y1) around every point of xy (..., 2), with a 4% margin on each side."""
    lo, hi = np.nanmin(xy.reshape(-1, 2), 0), np.nanmax(xy.reshape(-1, 2), 0)
    pad = 0.04 * (hi - lo) + 1e-9
    return (lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1])


def _lines_image(
    segments: np.ndarray, extent: tuple, size_px: tuple[int, int], **style
) -> np.ndarray:
    """`segments` drawn once as a LineCollection into an RGBA array that spans `extent` exactly
    (x0, x1, y0, y1): a raster backdrop that many panels show with `imshow`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure

    fig = Figure(figsize=(size_px[0] / 100, size_px[1] / 100), dpi=100)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.set_xlim(extent[:2])
    ax.set_ylim(extent[2:])
    ax.add_collection(LineCollection(segments, **style), autolim=False)  # limits set above
    canvas.draw()
    return np.asarray(canvas.buffer_rgba()).copy()


def misclassified_figure(
    codes: np.ndarray,
    labels: np.ndarray,
    predictions: np.ndarray,
    picks: np.ndarray,
    class_names: list[str],
    path: Path,
    title: str,
    background: np.ndarray | None = None,
    log1p: bool = True,
    max_panels: int = 12,
    backdrop: np.ndarray | None = None,
) -> Path:
    """One panel per misclassified sequence: its path (black), the paths of its true sign (blue)
    and of the predicted sign (orange), over all training paths in light grey (`backdrop`: that
    grey image, as `misclassified_backdrop` draws it, when several figures share it)."""
    from matplotlib.collections import LineCollection

    picks = picks[:max_panels]
    cols = min(4, max(1, len(picks)))
    rows = max(1, int(np.ceil(len(picks) / cols)))
    # every panel shows the same view: axes shared, tick labels on the outer panels only
    fig, axes = plt.subplots(
        rows, cols, figsize=(4 * cols, 3.8 * rows), squeeze=False, sharex=True, sharey=True
    )
    _place_panels(fig, rows, cols)
    xy = _display(codes[..., :2], log1p)
    bg = _background_paths(xy, background)
    bg_labels = labels if background is None else labels[background]
    extent = _padded_extent(xy)
    if backdrop is None:
        backdrop = misclassified_backdrop(codes, background, log1p)
    for ax in axes.ravel():
        ax.axis("off")
    for k, (ax, i) in enumerate(zip(axes.ravel(), picks, strict=False)):
        ax.axis("on")
        if k + cols >= len(picks):  # no panel below: this one carries the x tick labels
            ax.xaxis.set_tick_params(labelbottom=True)
        ax.imshow(backdrop, extent=extent, aspect="auto", interpolation="antialiased", zorder=0)
        ax.add_collection(
            LineCollection(
                bg[bg_labels == labels[i]], colors="tab:blue", linewidths=0.7, alpha=0.6
            ),
            autolim=False,  # every panel shows `extent` (set below)
        )
        ax.add_collection(
            LineCollection(
                bg[bg_labels == predictions[i]], colors="tab:orange", linewidths=0.7, alpha=0.6
            ),
            autolim=False,
        )
        ax.plot(xy[i, :, 0], xy[i, :, 1], color="black", lw=1.6)
        ax.plot(xy[i, -1, 0], xy[i, -1, 1], "o", color="black", ms=4)
        ax.set_xlim(extent[:2])
        ax.set_ylim(extent[2:])
        ax.set_title(
            f"true {class_names[labels[i]]} (blue)\npredicted {class_names[predictions[i]]} (orange)",
            fontsize=9,
        )
        ax.tick_params(labelsize=7)
    if len(picks) == 0:
        axes[0, 0].text(0.5, 0.5, "no misclassified sequences", ha="center", va="center")
    fig.suptitle(title, fontsize=12)
    return _save(fig, path, dpi=RUN_DPI, tight=False)


def _background_paths(xy: np.ndarray, background: np.ndarray | None) -> np.ndarray:
    """The paths the misclassified panels draw behind (all, or the `background` rows), every
    3rd step and the last: the same shapes at a third of the cost."""
    bg = xy if background is None else xy[background]
    return bg[:, np.r_[0 : bg.shape[1] - 1 : 3, bg.shape[1] - 1]]


def misclassified_backdrop(
    codes: np.ndarray, background: np.ndarray | None = None, log1p: bool = True
) -> np.ndarray:
    """The light-grey image of every background path that all misclassified panels show, drawn
    once instead of once per panel (up to 12 panels x 1,974 paths) and per figure."""
    xy = _display(codes[..., :2], log1p)
    bg = _background_paths(xy, background)
    return _lines_image(
        _from_starts(bg, shared_starts(bg)),
        _padded_extent(xy),
        (700, 640),
        colors="0.85",
        linewidths=0.5,
    )


def _place_panels(fig, rows: int, cols: int) -> None:
    """Margins of a grid of shared-axes panels in inches, set once instead of fitted by
    `tight_layout` (which lays out every panel's ticks once more before the drawing does):
    room for the y tick labels on the left, the x tick labels below, two title lines above
    each panel and the figure's title on top."""
    width, height = fig.get_figwidth(), fig.get_figheight()
    left, right, bottom, top, title = 0.55, 0.15, 0.4, 0.45, 0.45
    panel_w = (width - left - right - 0.2 * (cols - 1)) / cols
    panel_h = (height - bottom - top - title * (rows - 1) - title) / rows
    fig.subplots_adjust(
        left=left / width,
        right=1 - right / width,
        bottom=bottom / height,
        top=1 - (top + title) / height,
        wspace=0.2 / panel_w,
        hspace=title / panel_h,
    )


def paths_animation(
    codes: np.ndarray, path: Path, title: str, log1p: bool = True, frames: int = 30
) -> Path:
    """A GIF of the paths growing step by step (Pillow: no ffmpeg needed).

    Drawn incrementally: each frame adds only its new line segments to a kept background and
    draws the moving heads on a copy, instead of redrawing every path from step 0 per frame
    (5.3 s -> 1.9 s for the real data's 1,974 paths)."""
    from matplotlib.collections import LineCollection
    from PIL import Image

    xy = _display(codes[..., :2], log1p)
    n, t, _ = xy.shape
    starts = shared_starts(xy)
    dpi = 70
    fig, ax = plt.subplots(figsize=(7, 6), dpi=dpi)
    extent = _padded_extent(xy)
    ax.set_xlim(extent[:2])
    ax.set_ylim(extent[2:])
    label = ax.set_title(f"{title} — step {t}/{t}")  # the longest title: layout fits it
    fig.tight_layout()
    label.set_animated(True)  # drawn per frame, never into the kept background
    canvas = fig.canvas
    canvas.draw()
    # The heads are solid 2x2-pixel dots: antialiased, each dot's ring of blends with what lies
    # under it changed with every frame, and was a third of the file (real data: 685 -> 469 KB)
    heads = ax.scatter(
        [],
        [],
        s=4,
        c=[],
        cmap=TIME_CMAP,
        vmin=0,
        vmax=t - 1,
        animated=True,
        linewidths=0,
        antialiased=False,
    )
    ends = np.unique(np.linspace(2, t, frames).round().astype(int))
    images, drawn = [], 1
    for end in ends:
        # the lines so far stay in the background; only steps drawn..end are new
        new = LineCollection(
            _from_starts(xy[:, :end], np.maximum(starts, drawn - 1)),
            colors="0.2",
            linewidths=0.4,
            alpha=0.35,
            animated=True,
        )
        ax.add_collection(new, autolim=False)  # the limits are fixed above
        ax.draw_artist(new)
        new.remove()
        background = canvas.copy_from_bbox(fig.bbox)
        heads.set_offsets(xy[:, end - 1])
        heads.set_array(np.full(n, end - 1))
        label.set_text(f"{title} — step {end}/{t}")
        ax.draw_artist(heads)
        fig.draw_artist(label)
        rgba = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba())
        images.append(rgba.convert("RGB"))
        canvas.restore_region(background)
        drawn = end
    plt.close(fig)
    # one palette for every frame (from a strip of frames, so the heads' colours at every step
    # are in it): unchanged pixels stay equal, so the GIF stores each frame as its difference
    # from the one before
    sample = images[:: max(1, len(images) // 6)] + [images[-1]]
    strip = Image.new("RGB", (images[0].width, images[0].height * len(sample)))
    for i, im in enumerate(sample):
        strip.paste(im, (0, i * im.height))
    palette = strip.quantize(256, dither=Image.Dither.NONE)
    indexed = [im.quantize(palette=palette, dither=Image.Dither.NONE) for im in images]
    indexed[0].save(path, save_all=True, append_images=indexed[1:], duration=1000 // 6, loop=0)
    return path


# The paths' points travel as 14-bit grid positions over the plot's extent (16,382 steps a side:
# 13 per pixel of the 1,200-pixel plot, finer than the float16 codes of paths.npz at the
# picture's edges), each as its step from the point before (`delta_planes`), deflated and
# base64-encoded; the browser inflates them (DecompressionStream), adds the steps up and fills in
# each trace's x, y and hover texts. Float32 arrays made the file ~3x larger and one hover string
# per point ~5x (116,000 points on the real data); 16-bit positions without steps 31% larger.
# GRID + 1 marks the break between two paths. The per-recording lists the hover texts are built
# from (ids, predictions, each sign's recordings) travel deflated too: 85 KB of JSON as text,
# 18 KB so on the real data.
_POINTS_SCRIPT = """
var gd = document.getElementById('{plot_id}');
var info = %s;
function inflate(base64) {
  var bytes = Uint8Array.from(atob(base64), function (c) { return c.charCodeAt(0); });
  return new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream('deflate')))
    .arrayBuffer();
}
Promise.all([inflate(info.points), inflate(info.lists)]).then(function (parts) {
    var bytes = new Uint8Array(parts[0]), half = bytes.length / 2, n = half / 2;
    var grid = new Uint16Array(half), q = 0, at = 0, xs = [], ys = [];
    for (var i = 0; i < half; i++) {  // delta_planes, undone: high bytes, then low bytes
      var z = (bytes[i] << 8) | bytes[half + i];
      q = i === n ? 0 : q;  // the y axis starts again from 0
      q += (z >>> 1) ^ -(z & 1);
      grid[i] = q;
    }
    var lists = JSON.parse(new TextDecoder().decode(parts[1]));
    function coordinate(q, axis) {
      return q > info.grid ? NaN : info.low[axis] + q * info.span[axis] / info.grid;
    }
    info.counts.forEach(function (count) {
      var x = new Float64Array(count), y = new Float64Array(count);
      for (var i = 0; i < count; i++) {
        x[i] = coordinate(grid[at + i], 0);
        y[i] = coordinate(grid[n + at + i], 1);
      }
      at += count; xs.push(x); ys.push(y);
    });
    var texts = lists.members.map(function (members) {
      var out = [];
      members.forEach(function (i) {
        info.steps.forEach(function (s) { out.push(lists.ids[i] + '<br>step ' + s +
            '<br>predicted ' + lists.predicted[i]); });
        out.push('');
      });
      return out;
    });
    Plotly.restyle(gd, {x: xs, y: ys, text: texts});
  });
"""

# Where plotly.js comes from: written into the file (offline, +4.6 MB) or loaded from its CDN.
PLOTLYJS = {"inline": True, "cdn": "cdn"}
GRID = 16382  # positions per axis; GRID + 1 marks a break between paths


def deflated_base64(data: bytes) -> str:
    """`data` deflated (zlib format, what the browser's DecompressionStream('deflate') reads)
    and base64-encoded, to travel inside a page."""
    import base64
    import zlib

    return base64.b64encode(zlib.compress(data, 9)).decode()


def grid_points(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(P, 2) points (NaN rows: breaks) -> uint16 grid positions (2, P), the low corner and the
    span per axis; a point comes back as low + q * span / GRID, within span / (2 * GRID)."""
    real = ~np.isnan(points).any(1)
    low = points[real].min(0) if real.any() else np.zeros(2)
    span = points[real].max(0) - low if real.any() else np.ones(2)
    span = np.where(span > 0, span, 1.0)
    grid = np.full(points.shape, GRID + 1, np.uint16)
    grid[real] = np.round((points[real] - low) / span * GRID).astype(np.uint16)
    return grid.T.copy(), low, span


def delta_planes(grid: np.ndarray) -> bytes:
    """(2, P) uint16 grid positions -> bytes: along each axis, every position as its step from
    the one before (the first from 0), zigzag-coded (0, -1, 1, -2, ... -> 0, 1, 2, 3, ...) so a
    short step either way is a small number; all high bytes, then all low bytes. A path moves
    little from one step to the next, so the high bytes are mostly 0 and deflate well."""
    steps = np.diff(grid.astype(np.int32), axis=1, prepend=0)
    zigzag = ((steps << 1) ^ (steps >> 31)).astype(np.uint16)  # |step| <= GRID + 1 < 2**15
    return (zigzag >> 8).astype(np.uint8).tobytes() + (zigzag & 0xFF).astype(np.uint8).tobytes()


def interactive_paths(
    codes: np.ndarray,
    labels: np.ndarray,
    predictions: np.ndarray,
    ids: list[str],
    class_names: list[str],
    path: Path,
    title: str,
    log1p: bool = True,
    every: int = 2,
    plotlyjs: str = "inline",
) -> Path:
    """An HTML figure: zoom/pan, hover (sign, sequence id, step, prediction), and one legend
    entry per sign to show/hide it. Replaces the study's 50x40-inch PNG. The points go in as
    deflated 14-bit grid positions that the page decodes (`_POINTS_SCRIPT`), the hover texts are
    built in the browser, and plotly.js is inlined (self-contained) or loaded from its CDN
    (`plotlyjs="cdn"`)."""
    import json

    import plotly.graph_objects as go

    xy = _display(codes[..., :2], log1p).astype(np.float64)
    steps = np.unique(np.r_[np.arange(0, xy.shape[1], every), xy.shape[1] - 1])
    fig = go.Figure()
    members_of, traces = [], []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        members_of.append(members.tolist())
        # one path after another, a NaN point between two paths breaks the line
        points = np.full((len(members), len(steps) + 1, 2), np.nan)
        points[:, :-1] = xy[members][:, steps]
        traces.append(points.reshape(-1, 2))
        fig.add_trace(
            go.Scattergl(
                x=[],
                y=[],
                mode="lines+markers",
                name=class_names[c],
                line={"width": 0.8},
                marker={"size": 3},
                opacity=0.7,
                hovertemplate=f"<b>{class_names[c]}</b><br>%{{text}}<extra></extra>",
            )
        )
    fig.update_layout(
        title=title,
        width=1200,
        height=900,
        template="plotly_white",
        legend={"title": "sign (click: hide/show, double-click: only this)", "font": {"size": 10}},
        xaxis_title="unit 1" + (" (log1p)" if log1p else ""),
        yaxis_title="unit 2" + (" (log1p)" if log1p else ""),
    )
    grid, low, span = grid_points(np.concatenate(traces))
    lists = {
        "members": members_of,
        "ids": [str(i) for i in ids],
        "predicted": [class_names[p] for p in predictions],
    }
    info = {
        "points": deflated_base64(delta_planes(grid)),
        "lists": deflated_base64(json.dumps(lists, separators=(",", ":")).encode()),
        "grid": GRID,
        "counts": [len(t) for t in traces],
        "low": low.tolist(),
        "span": span.tolist(),
        "steps": steps.tolist(),
    }
    fig.write_html(
        path,
        include_plotlyjs=PLOTLYJS[plotlyjs],
        full_html=True,
        post_script=_POINTS_SCRIPT % json.dumps(info),
    )
    return path


# --------------------------------------------------------------------------- report


def pair_frequency_heatmap(
    frequency: np.ndarray, class_names: list[str], path: Path, title: str
) -> Path:
    """Pair frequencies, signs ordered by average-linkage clustering so related blocks show."""
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import squareform

    n = len(class_names)
    distance = 1.0 - np.asarray(frequency, dtype=np.float64)
    np.fill_diagonal(distance, 0.0)
    order = (
        leaves_list(linkage(squareform(distance, checks=False), "average"))
        if n > 2
        else np.arange(n)
    )
    shown = np.asarray(frequency, dtype=np.float64)[np.ix_(order, order)].copy()
    np.fill_diagonal(shown, np.nan)
    size = max(6.0, n * 0.13)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    im = ax.imshow(shown, cmap="magma_r", vmin=0, vmax=1)
    fontsize = max(3.0, min(9.0, 420 / max(n, 1)))
    names = [class_names[i] for i in order]
    ax.set_xticks(np.arange(n), names, rotation=90, fontsize=fontsize)
    ax.set_yticks(np.arange(n), names, fontsize=fontsize)
    ax.set_title(title, fontsize=11)
    fig.colorbar(im, ax=ax, fraction=0.03, label="share of runs in which the pair is related")
    return _save(fig, path)


def aligned_small_multiples(
    codes_list: list[np.ndarray],
    labels_list: list[str],
    rec,
    highlight: list[str],
    path: Path,
    title: str,
) -> Path:
    """One panel per run: every sign's mean path, Procrustes-aligned to the first run.

    Signs in `highlight` (the named pairs) are coloured and labelled, the rest grey, so the
    reader sees which neighbourhoods move between runs and which stay. Shown as
    sign(z)·log1p(|z|) after the alignment.
    """
    from lstmpaths.stability import align_to, resample_paths, sign_means

    n_signs = len(rec.class_names)
    t = rec.train
    means = []
    for codes in codes_list:
        m = sign_means(resample_paths(codes[t], rec.lengths[t], 20), rec.labels[t], n_signs)
        means.append(m[..., :2])
    ref = means[0].reshape(-1, 2)
    keep = np.isfinite(ref).all(1)
    aligned = []
    for m in means:
        flat = m.reshape(-1, 2)
        out = np.full_like(flat, np.nan)
        out[keep] = align_to(ref[keep], flat[keep])
        # aligned first, then the study's sign(z)·log1p(|z|) so the crowded centre opens up
        aligned.append(_display(out.reshape(m.shape), True))
    cols = min(3, len(aligned))
    rows = (len(aligned) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 4.8 * rows), squeeze=False)
    palette = plt.get_cmap("tab10")
    colour = {s: palette(i % 10) for i, s in enumerate(highlight)}
    everything = np.concatenate([a.reshape(-1, 2) for a in aligned])
    lo, hi = np.nanmin(everything, 0), np.nanmax(everything, 0)
    pad = 0.05 * (hi - lo)
    for ax, m, label in zip(axes.flat, aligned, labels_list, strict=False):
        for s, name in enumerate(rec.class_names):
            if name in colour:
                continue
            ax.plot(m[s, :, 0], m[s, :, 1], color="0.75", lw=0.6)
        for name, c in colour.items():
            s = rec.class_names.index(name)
            ax.plot(m[s, :, 0], m[s, :, 1], color=c, lw=2.0)
            ax.scatter(m[s, -1, 0], m[s, -1, 1], color=c, s=18, zorder=3)
            ax.annotate(
                name, m[s, -1], fontsize=8, color=c, xytext=(3, 3), textcoords="offset points"
            )
        ax.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
        ax.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
        ax.set_title(label, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes.flat[len(aligned) :]:
        ax.axis("off")
    fig.suptitle(title, fontsize=12)
    return _save(fig, path)


def consensus_figure(
    aligned: list[np.ndarray], names: list[str], highlight: list[str], path: Path, title: str
) -> Path:
    """Each sign's end point over seeds (already Procrustes-aligned, `aligned`: one (S, 2) set
    per seed): drawn at its mean with its 1-sd ellipse over the seeds, named signs coloured,
    filled and labelled in full. A sign whose ellipse is small sits in the same place whatever
    the seed."""
    from matplotlib.patches import Ellipse

    points = np.stack(aligned)  # (seeds, S, 2)
    mean = np.nanmean(points, 0)
    fig, ax = plt.subplots(figsize=(9, 8))
    palette = plt.get_cmap("tab10")
    colour = {s: palette(i % 10) for i, s in enumerate(highlight)}
    for s, name in enumerate(names):
        c = colour.get(name, "0.6")
        finite = points[:, s][np.isfinite(points[:, s]).all(1)]
        if len(finite) >= 3:
            values, vectors = np.linalg.eigh(np.cov(finite.T))
            width, height = 2 * np.sqrt(np.maximum(values[::-1], 0))
            angle = np.degrees(np.arctan2(vectors[1, -1], vectors[0, -1]))
            named = name in colour
            ax.add_patch(
                Ellipse(mean[s], width, height, angle=angle, facecolor=c if named else "none",
                        edgecolor=c, alpha=0.35 if named else 0.3, lw=1.0 if named else 0.5)
            )  # fmt: skip
        ax.scatter(*mean[s], color=c, s=22 if name in colour else 6, zorder=3)
        ax.annotate(
            name, mean[s], fontsize=8 if name in colour else 5, color=c if name in colour else "0.4",
            xytext=(3, 2), textcoords="offset points",
        )  # fmt: skip
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=11)
    return _save(fig, path)


def cka_figure(cka: np.ndarray, names: list[str], path: Path, network: str = "LSTM") -> Path:
    """Linear CKA between the classifiers' activations, annotated."""
    n = len(names)
    fig, ax = plt.subplots(figsize=(1.2 * n + 2.5, 1.1 * n + 1.5))
    im = ax.imshow(cka, cmap="viridis", vmin=min(0.5, float(np.nanmin(cka))), vmax=1)
    ax.set_xticks(np.arange(n), names, rotation=45)
    ax.set_yticks(np.arange(n), names)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{cka[i, j]:.3f}", ha="center", va="center", fontsize=9, color="w")
    ax.set_title(f"Linear CKA of {network} activations across retrains (same inputs)")
    fig.colorbar(im, ax=ax, fraction=0.046)
    return _save(fig, path)


# --- every figure of one paths run -------------------------------------------------------------


def network_name(source: str | None, cell: str | None) -> str:
    """What made the projected activations, for titles and the report: LSTM or GRU (the
    classifier lstmpaths trains), or "network" (activations a user brought)."""
    return "network" if source == "activations" else str(cell or "lstm").upper()


@dataclass
class PathsView:
    """What a paths run's figures are drawn from: host arrays, as stored in `paths.npz` (with the
    hand-usage ratios), so a finished run can be drawn again."""

    codes: np.ndarray  # (N, T, k) every recording's path
    labels: np.ndarray
    predictions: np.ndarray
    part: np.ndarray  # "train" / "val" / "test"
    ids: list[str]
    class_names: list[str]
    desc: str  # "linear bottleneck, noise 0.1, seed 0"
    hand_ratios: np.ndarray | None = None  # None: not two-glove data
    hand_threshold: float = 0.25
    network: str = "LSTM"  # network_name of the activations

    @classmethod
    def of_run(
        cls,
        arrays: Mapping,
        codes: np.ndarray,
        autoencoder: Mapping,
        hand_ratios: np.ndarray | None = None,
        hand_threshold: float = 0.25,
        network: str = "LSTM",
    ) -> PathsView:
        """A paths run's view: `arrays` as stored (`paths.npz` or the classifier's
        `activations.npz`: labels, predictions, part, ids, class names), the run's autoencoder
        settings for the titles."""
        ae = autoencoder
        return cls(
            codes=codes,
            labels=arrays["labels"],
            predictions=arrays["predictions"],
            part=arrays["part"],
            ids=[str(s) for s in arrays["ids"]],
            class_names=[str(s) for s in arrays["class_names"]],
            desc=f"{ae['activation']} bottleneck, noise {ae['noise']}, seed {ae['seed']}",
            hand_ratios=hand_ratios,
            hand_threshold=hand_threshold,
            network=network,
        )


GROUP_PALETTE = ["tab:red", "tab:blue", "tab:green", "tab:purple", "tab:orange", "tab:brown"]


def draw_paths_figures(
    view: PathsView, groups: list[list[str]], settings: Mapping, out: Path
) -> list[Path]:
    """Every figure of a paths run into `out`. `settings`: the presentation keys of the figures
    config (log1p, animation, interactive, max_misclassified_panels)."""
    log1p, desc = bool(settings["log1p"]), view.desc
    train = np.flatnonzero(view.part == "train")
    codes, names = view.codes[train], view.class_names
    labels = view.labels[train]
    files = [
        paths_figure(
            codes, labels, names, out / "paths.png",
            f"{view.network} activations: {len(train)} training paths ({desc})", log1p,
        ),
        last_step_figure(
            codes, labels, names, out / "last_step.png",
            f"Last-step points of the training paths ({desc})", log1p,
        ),
    ]  # fmt: skip
    if codes.shape[-1] == 3:
        files.append(
            paths_3d_figure(
                codes, labels, names, out / "paths_3d.png", f"Training paths in 3-D ({desc})", log1p
            )
        )
    if view.hand_ratios is not None:
        one = view.hand_ratios < view.hand_threshold
        title = f"One-handed (cyan) vs two-handed (magenta) training paths ({desc})"
        files.append(hands_figure(codes, one[train], out / "hands.png", title, log1p))
        files.append(
            ratio_histogram(view.hand_ratios, view.hand_threshold, out / "hand_ratio_hist.png")
        )
    for group in groups:
        members = [names.index(s) for s in group]
        mask = np.isin(labels, members)
        files.append(
            paths_figure(
                codes[mask], labels[mask], names, out / f"group_{'_'.join(group)}.png",
                f"{' / '.join(group)} ({desc})", log1p,
                highlight={c: GROUP_PALETTE[j % len(GROUP_PALETTE)] for j, c in enumerate(members)},
            )
        )  # fmt: skip
    backdrop = misclassified_backdrop(view.codes, train, log1p)
    for name in ("train", "val", "test"):
        idx = np.flatnonzero((view.part == name) & (view.predictions != view.labels))
        files.append(
            misclassified_figure(
                view.codes, view.labels, view.predictions, idx, names,
                out / f"misclassified_{name}.png", f"Misclassified {name} sequences: {len(idx)}",
                background=train, log1p=log1p,
                max_panels=int(settings["max_misclassified_panels"]), backdrop=backdrop,
            )
        )  # fmt: skip
    if settings["animation"]:
        files.append(paths_animation(codes, out / "paths.gif", "Training paths", log1p))
    if settings["interactive"]:
        files.append(
            interactive_paths(
                view.codes, view.labels, view.predictions, view.ids, names, out / "paths.html",
                f"{view.network} paths, all {len(view.ids)} sequences ({desc})", log1p,
                plotlyjs=str(settings.get("plotlyjs", "inline")),
            )
        )  # fmt: skip
    return files
