"""The projection stage: the denoising autoencoder on a classifier's activations -> every
recording's path, how faithful the 2-D/3-D picture is (against PCA on the same points), and the
hand-usage heuristic. Plain functions on arrays and a config; no MLflow."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from omegaconf import DictConfig

from lstmpaths.data import SequenceSet, save_arrays, save_weights, stored_float
from lstmpaths.devices import Device
from lstmpaths.errors import ConfigError
from lstmpaths.processes import LastValue

if TYPE_CHECKING:
    from lstmpaths.metrics import Neighbourhoods

log = logging.getLogger("lstmpaths")
GLOVE_CHANNELS = 22  # the hand heuristic needs the two-glove layout (11 channels per hand)


@dataclass
class Projection:
    """A fitted autoencoder and what it makes of the activations."""

    net: object  # the DenoisingAutoencoder, best weights
    codes: np.ndarray  # (N, T, k) every recording's path
    metrics: dict[str, float]
    hand_ratios: np.ndarray | None = None  # per recording; None: not two-glove data
    one_handed: np.ndarray | None = field(default=None)
    warning: str | None = None  # for the user and the run's tag, e.g. a unit that never varies


def project(
    ae: DictConfig, figs: DictConfig, arrays: dict, data: SequenceSet, device: Device
) -> Projection:
    """Fit the autoencoder on the per-step activations of the training recordings, encode every
    recording, and measure the picture (reconstruction, trustworthiness/continuity vs PCA,
    hand separation). `arrays`: a classifier run's `activations.npz`."""
    from lstmpaths.autoencoder import (
        encode_paths,
        reconstruction_mse,
        train_autoencoder,
        training_vectors,
    )
    from lstmpaths.metrics import constant_units

    acts = arrays["activations"].astype(np.float32)
    train = np.flatnonzero(arrays["part"] == "train")
    lengths = arrays["lengths"]
    vectors = training_vectors(acts[train], lengths[train], str(ae.window), tuple(ae.study_steps))
    net, facts = train_autoencoder(ae, vectors, device)
    val_vectors = facts.pop("val_vectors")

    started = time.perf_counter()
    # every recording's every step, rounded as `paths.npz` stores it: the metrics, the figures
    # and a later redraw or report all see the same paths
    codes = stored_float(encode_paths(net, acts, device=device.torch)).astype(np.float32)
    metrics = {
        "recon_mse_val": reconstruction_mse(net, val_vectors, device=device.torch),
        **facts,
        "encode_seconds": time.perf_counter() - started,
    }
    metrics |= faithfulness(net, vectors, int(ae.bottleneck), figs, device)
    flat = constant_units(codes[train].reshape(-1, codes.shape[-1]))
    metrics["constant_units"] = float(len(flat))
    projection = Projection(net, codes, metrics, warning=flat_picture(flat, ae))
    if projection.warning:
        log.warning(projection.warning)
    hand_usage(projection, figs, arrays, data, train)
    return projection


def flat_picture(units: list[int], ae: Mapping) -> str | None:
    """What to tell a user whose bottleneck has units that never vary (0-based `units`)."""
    if not units:
        return None
    k, many = int(ae["bottleneck"]), len(units) > 1
    names = ", ".join(str(u + 1) for u in units)
    setting = f"{ae['activation']} bottleneck, noise {ae['noise']}, seed {ae['seed']}"
    return (
        f"bottleneck unit{'s' * many} {names} of {k} never var{'y' if many else 'ies'} over the "
        f"training paths ({setting}; e.g. a ReLU unit that never fires): the picture has "
        f"{k - len(units)} dimension(s), not {k}. Another seed or bottleneck activation usually "
        "avoids it"
    )


@dataclass(frozen=True)
class Baseline:
    """What a projection's faithfulness is measured against, the same for every autoencoder on
    one classifier's vectors: the subsample's high-dimensional neighbourhoods and PCA's scores."""

    sample: np.ndarray  # indices into the training vectors
    neighbourhoods: Neighbourhoods  # of vectors[sample]
    pca: tuple[float, float]  # (trustworthiness, continuity) of PCA to the bottleneck's width


# The last baseline a process computed: every job of a sweep on one classifier measures against
# the same one, which costs ~2 s of one core on the real data. Keyed on the vectors' bytes, so a
# job never sees another classifier's baseline.
_last_baseline: LastValue[Baseline] = LastValue()


def baseline(vectors: np.ndarray, k: int, figs: DictConfig) -> Baseline:
    """The baseline of `vectors` (an autoencoder's training vectors) for a k-D picture."""
    import hashlib

    from lstmpaths.metrics import Neighbourhoods, pca_codes, subsample

    at_most, n_neighbours = int(figs.metrics_subsample), int(figs.metrics_k)
    digest = hashlib.blake2b(np.ascontiguousarray(vectors).data, digest_size=16)
    digest.update(repr((vectors.shape, str(vectors.dtype), k, at_most, n_neighbours)).encode())

    def compute() -> Baseline:
        sample = subsample(len(vectors), at_most, seed=0)
        high = vectors[sample]
        neighbourhoods = Neighbourhoods.of(high, n_neighbours)
        pca = neighbourhoods.scores(pca_codes(high, k, fit_on=vectors))
        return Baseline(sample, neighbourhoods, pca)

    return _last_baseline.get(digest.hexdigest(), compute)


def faithfulness(net, vectors: np.ndarray, k: int, figs: DictConfig, device: Device) -> dict:
    """Trustworthiness and continuity of the codes against the 100-D vectors, and of PCA on the
    same fixed subsample (the baseline a reader should compare with)."""
    from lstmpaths.autoencoder import encode

    base = baseline(vectors, k, figs)
    trust, cont = base.neighbourhoods.scores(encode(net, vectors[base.sample], device=device.torch))
    pca_trust, pca_cont = base.pca
    return {
        "trustworthiness": trust,
        "continuity": cont,
        "pca_trustworthiness": pca_trust,
        "pca_continuity": pca_cont,
    }


def hand_usage(
    projection: Projection, figs: DictConfig, arrays: dict, data: SequenceSet, train: np.ndarray
) -> None:
    """One- vs two-handed recordings (the study's left/right movement ratio) and how well the
    paths' end points separate them; glove data only (else nothing is added)."""
    from lstmpaths.data import pad_front
    from lstmpaths.metrics import hand_ratio, hand_separation

    if data.n_channels != GLOVE_CHANNELS or data.channel_names[0] != "l_x":
        log.info(
            "hand usage figures skipped: the data are not two-glove recordings (%d channels)",
            data.n_channels,
        )
        return
    if list(data.ids) != [str(s) for s in arrays["ids"]]:
        raise ConfigError(
            "the data no longer match the classifier's activations (ids differ); rerun with "
            "classifier.reuse=false"
        )
    raw = pad_front(data.sequences, arrays["activations"].shape[1])
    n_smallest = int(figs.hand_n_smallest)
    ratios = np.array([hand_ratio(r[:, :11], r[:, 11:], n_smallest) for r in raw])
    one = ratios < float(figs.hand_threshold)
    projection.metrics["hand_separation"] = hand_separation(
        projection.codes[train][:, -1], one[train]
    )
    projection.metrics["one_handed_share"] = float(one.mean())
    projection.hand_ratios, projection.one_handed = ratios, one


def write_paths_files(out: Path, projection: Projection, arrays: dict) -> list[Path]:
    """The paths run's arrays: `paths.npz` (what lstmpaths-redraw and the report read; for glove
    data with each recording's hand-usage ratio and one-handed flag) and the autoencoder's
    weights. Codes and weights are stored in float16 where they fit (`stored_float`): half the
    bytes of a sweep's largest files; the weights in a deflated zip (`save_weights`)."""
    import torch

    from lstmpaths.devices import host_state

    ids = [str(s) for s in arrays["ids"]]
    # The hand usage of the recordings is the same in every run on the same data; as a CSV
    # (id, sign, ratio, flag) it was 81 KB of each real sweep job, in paths.npz 10 KB.
    hands = (
        {}
        if projection.hand_ratios is None
        else {
            "hand_ratios": projection.hand_ratios.astype(np.float32),
            "one_handed": projection.one_handed,
        }
    )
    save_arrays(
        out / "paths.npz",
        codes=stored_float(projection.codes),
        labels=arrays["labels"],
        predictions=arrays["predictions"],
        part=arrays["part"],
        ids=np.array(ids),
        lengths=arrays["lengths"],
        class_names=arrays["class_names"],
        **hands,
    )
    # Weights in float16 too: re-encoding with them moved a code by at most 2.3e-4 of the picture's
    # extent over the 43 jobs of a real robustness sweep, less than rounding the codes themselves
    # (4.5e-4). load_state_dict copies them into a float32 net.
    weights = {
        name: torch.from_numpy(stored_float(w.numpy())) if w.is_floating_point() else w
        for name, w in host_state(projection.net).items()
    }
    save_weights(out / "autoencoder.pt", weights)
    return [out / "paths.npz", out / "autoencoder.pt"]
