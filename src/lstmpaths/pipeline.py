"""Stages of one `lstmpaths-run` job, with Lightning and MLflow at this edge.

classifier stage: data -> split -> (reuse a FINISHED run with the same key | train) ->
evaluation -> activations (N, T, hidden) stored as `activations.npz` in the run.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import MLFlowLogger
from omegaconf import DictConfig, OmegaConf

from lstmpaths.data import SequenceSet, padded_length
from lstmpaths.devices import Device, host_state, resolve_device
from lstmpaths.errors import ConfigError
from lstmpaths.settings import check_config
from lstmpaths.sources import load_source
from lstmpaths.splits import Split, make_split
from lstmpaths.sweep import sweep_context
from lstmpaths.tracking import (
    KEY_TAG,
    STAGE_TAG,
    ensure_experiment,
    find_finished,
    flatten,
    log_metrics,
    store_folder,
    tracked_run,
)

log = logging.getLogger("lstmpaths")

# Keys that change how a run is executed or tracked, or guard input sizes, not what it computes.
NOT_IN_KEY = {"reuse", "threads", "max_file_mb", "max_steps"}


@dataclass
class Prepared:
    data: SequenceSet
    split: Split
    maxlen: int


@dataclass
class ClassifierOutcome:
    run_id: str
    key: str
    reused: bool
    metrics: dict[str, float]
    prepared: Prepared  # the data and split the classifier saw, handed on to the paths stage
    # activations.npz's arrays when this job trained the classifier (handed on in memory);
    # None when it reused a stored run (the paths stage reads them from the store)
    arrays: dict[str, np.ndarray] | None = None


# The last data a process prepared: parallel sweep workers (joblib/loky) run job after job in
# the same process, and parsing the Auslan archive again for each of them costs ~1 s a job.
_last_prepared: tuple[str, Prepared] | None = None


def prepare_data(data_cfg: DictConfig | dict) -> Prepared:
    global _last_prepared
    options = (
        OmegaConf.to_container(data_cfg, resolve=True)
        if isinstance(data_cfg, DictConfig)
        else dict(data_cfg)
    )
    path = Path(options["path"]) if options.get("path") else None
    if path is not None and not path.is_file():
        return _prepare(options)  # a folder (or a missing path): no cheap way to see a change
    stat = path.stat() if path is not None else None
    key = stable_hash([options, stat and (stat.st_size, stat.st_mtime_ns)])
    if _last_prepared is not None and _last_prepared[0] == key:
        return _last_prepared[1]
    prepared = _prepare(options)
    _last_prepared = (key, prepared)
    return prepared


def _prepare(options: dict) -> Prepared:
    source = options.get("source")
    data = load_source(source, options)
    split = make_split(
        data,
        options.get("split", "reference"),
        train_size=options.get("train_size", 1974),
        seed=options.get("split_seed", 8),
        train_sessions=options.get("train_sessions", (1, 2, 3, 4, 5, 6, 7)),
        val_sessions=options.get("val_sessions", (8,)),
        test_sessions=options.get("test_sessions", (9,)),
        val_size=options.get("val_size", 0.15),
    )
    maxlen = options.get("maxlen")
    return Prepared(data, split, padded_length(data, maxlen))


def stable_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def classifier_key(data_cfg: dict, fingerprint: str, classifier_cfg: dict) -> str:
    """hash(data config + dataset fingerprint + classifier config incl. seed)."""
    data_part = {k: v for k, v in data_cfg.items() if k not in NOT_IN_KEY}
    clf_part = {k: v for k, v in classifier_cfg.items() if k not in NOT_IN_KEY}
    return stable_hash({"data": data_part, "fingerprint": fingerprint, "classifier": clf_part})


def key_lock(tracking: DictConfig, stage: str, key: str):
    """A file lock per configuration key, beside the store: a second job (or a second sweep) with
    the same configuration waits for the first and then reuses its run instead of training again."""
    from filelock import FileLock

    folder = store_folder(tracking.uri, tracking.get("state_dir")) / "locks"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"tracking.state_dir: cannot create {folder} ({exc.strerror})") from None
    return FileLock(str(folder / f"{stage}-{key}.lock"))


def fit(trainer, *args, **kwargs) -> None:
    """`trainer.fit`, with Ctrl-C kept a KeyboardInterrupt: Lightning catches it, ignores SIGINT
    from then on and calls sys.exit(1), so a caller would see a plain failure."""
    import signal

    try:
        trainer.fit(*args, **kwargs)
    except SystemExit:
        if trainer.interrupted:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt from None
        raise


def preflight(cfg: DictConfig, prepared: Prepared) -> None:
    """Settings a job would only trip over after minutes of training, checked up front."""
    from lstmpaths.autoencoder import resolve_precision

    device = resolve_device(cfg.accelerator)  # a GPU asked for and missing: said now
    if cfg.stage == "paths":
        resolve_precision(cfg.autoencoder.get("precision", "32"), device)
        sign_groups(cfg.figures.get("groups"), prepared.data.class_names, prepared.data.truth)


def run_classifier_stage(cfg: DictConfig, prepared: Prepared | None = None) -> ClassifierOutcome:
    """Reuse the FINISHED classifier with this key, or train it (once, even with parallel jobs)."""
    uri, experiment = cfg.tracking.uri, cfg.tracking.experiment
    prepared = prepared or prepare_data(cfg.data)
    data_cfg = OmegaConf.to_container(cfg.data, resolve=True)
    clf_cfg = OmegaConf.to_container(cfg.classifier, resolve=True)
    key = classifier_key(data_cfg, prepared.data.fingerprint, clf_cfg)
    experiment_id = ensure_experiment(uri, experiment)

    def reusable():
        if not cfg.classifier.reuse:
            return None
        return find_finished(uri, experiment_id, key)

    found = reusable()
    if found is None:
        lock = key_lock(cfg.tracking, "classifier", key)
        if lock.is_locked:
            log.info("another job is training classifier %s; waiting for it", key)
        with lock:
            found = reusable()  # it may have finished while we waited
            if found is None:
                return _train_classifier(cfg, prepared, key, experiment_id)
    log.info("reusing classifier run %s (key %s)", found.info.run_id, key)
    metrics = {k: float(v) for k, v in found.data.metrics.items()}
    return ClassifierOutcome(found.info.run_id, key, True, metrics, prepared)


def _train_classifier(
    cfg: DictConfig, prepared: Prepared, key: str, experiment_id: str
) -> ClassifierOutcome:
    import lightning as L
    import torch
    from hydra.utils import instantiate
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    from lstmpaths.classifier import (
        ClassifierModule,
        SequenceDataModule,
        extract_activations,
        padded_inputs,
        standardizer,
    )
    from lstmpaths.tracking import client

    uri = cfg.tracking.uri
    data, split, maxlen = prepared.data, prepared.split, prepared.maxlen
    clf = cfg.classifier
    device = resolve_device(cfg.accelerator)
    scale = standardizer(data, split.train) if cfg.data.get("standardize", True) else None
    inputs = padded_inputs(data, maxlen, scale)
    tags = {
        STAGE_TAG: "classifier",
        KEY_TAG: key,
        "lstmpaths.data_fingerprint": data.fingerprint,
        "lstmpaths.data_source": data.source,
        "lstmpaths.split": str(cfg.data.split),
        **sweep_context(),  # trained inside a sweep: a child of its parent run too
    }
    resolved = OmegaConf.to_container(cfg, resolve=True)
    params = flatten(
        {
            "data": resolved["data"],
            "classifier": resolved["classifier"],
            "threads": resolved.get("threads"),
        }
    )
    run_name = f"classifier-{data.source}-seed{clf.seed}"
    with (
        tracked_run(uri, experiment_id, run_name, tags, params) as run,
        tempfile.TemporaryDirectory() as tmp,
    ):
        run_id = run.info.run_id
        check_config(cfg)  # inside the run: a bad setting in a sweep shows as a FAILED run
        L.seed_everything(int(clf.seed), workers=True, verbose=False)
        net = instantiate(clf.net, n_channels=data.n_channels, n_classes=len(data.class_names))
        module = ClassifierModule(
            net,
            lr=float(clf.lr),
            l1=float(clf.l1),
            l2=float(clf.l2),
            noise=float(clf.augment.noise),
            time_warp=float(clf.augment.time_warp),
            lr_patience=int(clf.lr_patience),
        )
        datamodule = SequenceDataModule(
            inputs, data.labels, split, int(clf.batch_size), int(clf.seed)
        )
        checkpoint = ModelCheckpoint(
            dirpath=tmp, monitor="epoch/val_loss", mode="min", save_weights_only=True
        )
        trainer = L.Trainer(
            max_epochs=int(clf.max_epochs),
            callbacks=[
                EarlyStopping(monitor="epoch/val_loss", patience=int(clf.patience), mode="min"),
                checkpoint,
                EpochProgress(int(clf.max_epochs)),
            ],
            logger=CurvesOnlyMLFlowLogger(tracking_uri=uri, run_id=run_id),  # never ./mlruns
            gradient_clip_val=float(clf.get("grad_clip", 0.0)) or None,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            log_every_n_steps=10**9,  # epoch curves only
            deterministic=True,
            accelerator=device.lightning,
            devices=1,
        )
        job_threads = torch.get_num_threads()
        if clf.get("threads"):
            torch.set_num_threads(int(clf.threads))
        started = time.perf_counter()
        try:
            fit(trainer, module, datamodule=datamodule)
        finally:
            torch.set_num_threads(job_threads)
        train_seconds = time.perf_counter() - started
        best = torch.load(checkpoint.best_model_path, weights_only=True, map_location=device.torch)
        module.load_state_dict(best["state_dict"])

        activations, probs = extract_activations(net, inputs, device=device.torch)
        predictions = probs.argmax(1)
        metrics = evaluation_metrics(data.labels, predictions, probs, split)
        metrics.update(
            epochs=float(trainer.current_epoch),
            best_epoch=float(_best_epoch(checkpoint.best_model_path)),
            train_seconds=train_seconds,
            seconds_per_epoch=train_seconds / max(1, trainer.current_epoch),
        )
        mlflow_client = client(uri)
        log_metrics(mlflow_client, run_id, metrics)

        out = Path(tmp) / "artifacts"
        out.mkdir()
        part = split.part_of(len(data))
        torch.save(
            {
                "state_dict": host_state(net),
                "mean": torch.from_numpy(
                    np.asarray(scale[0] if scale else np.zeros(data.n_channels), np.float32)
                ),
                "sd": torch.from_numpy(
                    np.asarray(scale[1] if scale else np.ones(data.n_channels), np.float32)
                ),
            },
            out / "classifier.pt",
        )
        # exactly what is stored (float16 activations) is what the paths stage gets, so a job
        # that trains its classifier computes the same paths as one that reuses it
        stored = {
            "activations": activations.astype(np.float16),
            "labels": data.labels,
            "predictions": predictions,
            "confidence": probs.max(1).astype(np.float32),
            "part": part.astype(str),
            "ids": np.array(data.ids),
            "lengths": data.lengths,
            "sessions": data.sessions,
            "class_names": np.array(data.class_names),
            "channel_names": np.array(data.channel_names),
        }
        np.savez_compressed(out / "activations.npz", **stored)
        (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
        _write_per_class(out / "per_class_accuracy.csv", data, predictions, split)
        _write_misclassified(out / "misclassified.csv", data, predictions, probs, part)
        from lstmpaths.figures import confusion_figure

        confusion_figure(
            data.labels[split.test],
            predictions[split.test],
            data.class_names,
            out / "confusion_test.png",
        )
        for path in sorted(out.iterdir()):
            artifact_dir = "figures" if path.suffix == ".png" else None
            mlflow_client.log_artifact(run_id, str(path), artifact_dir)
        log.info(
            "classifier %s: test_acc %.4f, val_acc %.4f, %d epochs in %.0f s",
            run_id,
            metrics["test_acc"],
            metrics["val_acc"],
            metrics["epochs"],
            train_seconds,
        )
        return ClassifierOutcome(run_id, key, False, metrics, prepared, stored)


def _best_epoch(path: str) -> int:
    try:
        return int(Path(path).stem.split("epoch=")[1].split("-")[0])
    except (IndexError, ValueError):
        return -1


def evaluation_metrics(
    labels: np.ndarray, predictions: np.ndarray, probs: np.ndarray, split: Split
) -> dict[str, float]:
    from sklearn.metrics import f1_score

    out: dict[str, float] = {}
    for name in ("train", "val", "test"):
        idx = getattr(split, name)
        out[f"{name}_acc"] = float(np.mean(predictions[idx] == labels[idx]))
        p_true = np.clip(probs[idx, labels[idx]], 1e-12, 1.0)
        out[f"{name}_loss"] = float(-np.mean(np.log(p_true)))
    out["test_macro_f1"] = float(
        f1_score(
            labels[split.test],
            predictions[split.test],
            average="macro",
            labels=np.unique(labels[split.test]),
        )
    )
    return out


def _write_per_class(path: Path, data: SequenceSet, predictions: np.ndarray, split: Split) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["sign", "train_acc", "val_acc", "test_acc", "n_test"])
        for c, name in enumerate(data.class_names):
            row = [name]
            for part in ("train", "val", "test"):
                idx = getattr(split, part)
                idx = idx[data.labels[idx] == c]
                row.append(f"{np.mean(predictions[idx] == c):.4f}" if len(idx) else "")
            row.append(int(np.sum(data.labels[split.test] == c)))
            writer.writerow(row)


def _write_misclassified(
    path: Path, data: SequenceSet, predictions: np.ndarray, probs: np.ndarray, part: np.ndarray
) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "part", "true", "predicted", "p_predicted", "p_true"])
        for i in np.flatnonzero(predictions != data.labels):
            writer.writerow(
                [
                    data.ids[i],
                    part[i],
                    data.class_names[data.labels[i]],
                    data.class_names[predictions[i]],
                    f"{probs[i, predictions[i]]:.4f}",
                    f"{probs[i, data.labels[i]]:.4f}",
                ]
            )


class CurvesOnlyMLFlowLogger(MLFlowLogger):
    """Lightning's MLFlowLogger, except that it never ends the run.

    The stock `finalize` marks the run FINISHED when `fit` returns, before the activations and
    other artifacts are logged; a parallel job would then reuse a run that is not complete.
    tracked_run ends the run once everything is in.
    """

    def finalize(self, status: str = "success") -> None:  # noqa: ARG002
        return


class EpochProgress(Callback):
    """Prints one line every few epochs (never a progress bar that floods multirun logs)."""

    def __init__(self, max_epochs: int) -> None:
        self.max_epochs = max_epochs
        self.every = max(1, max_epochs // 20)
        self.started = time.perf_counter()

    def on_validation_epoch_end(self, trainer, pl_module) -> None:  # noqa: ARG002
        epoch = trainer.current_epoch + 1
        if epoch % self.every and epoch != 1:
            return
        m = trainer.callback_metrics
        elapsed = time.perf_counter() - self.started
        print(
            f"  epoch {epoch}/{self.max_epochs}  val_loss {float(m.get('epoch/val_loss', float('nan'))):.4f}"
            f"  val_acc {float(m.get('epoch/val_acc', float('nan'))):.3f}  ({elapsed:.0f} s)",
            file=sys.stderr,
            flush=True,
        )


# --------------------------------------------------------------------------- projection stage

GLOVE_CHANNELS = 22  # the hand heuristic needs the two-glove layout (11 channels per hand)


def load_activations(uri: str, run_id: str, folder: str) -> dict[str, np.ndarray]:
    from lstmpaths.tracking import client

    local = client(uri).download_artifacts(run_id, "activations.npz", folder)
    with np.load(local, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def sign_groups(groups, class_names: list[str], truth: dict | None) -> list[list[str]]:
    """The configured sign groups (`figures.groups`), or (synthetic, groups=null) one of each
    planted relation."""
    if groups is None:
        if truth is None:
            return []
        picks = truth["extension_pairs"][:1] + truth["near_twins"][:1] + truth["control_pairs"][:1]
        picks += [[m["sign"]] for m in truth["mislabelled"][:1]]
        return [list(p) for p in picks]
    groups = [
        list(g)
        for g in (
            OmegaConf.to_container(groups, resolve=True) if OmegaConf.is_config(groups) else groups
        )
    ]
    known = set(class_names)
    for group in groups:
        unknown = [s for s in group if s not in known]
        if unknown:
            close = sorted(known, key=lambda k: -_similarity(k, unknown[0]))[:5]
            raise ConfigError(f"figures.groups: unknown sign(s) {unknown}; close names: {close}")
    return groups


def _similarity(a: str, b: str) -> float:
    import difflib

    return difflib.SequenceMatcher(None, a.lower(), b.lower()).ratio()


# Figure settings that change only how the pictures look, never a number: left out of the
# paths key, and the ones `lstmpaths-redraw` may change on a finished run.
PRESENTATION_KEYS = ("log1p", "groups", "animation", "interactive", "max_misclassified_panels")


def presentation(figures_cfg) -> dict:
    return {k: figures_cfg.get(k) for k in PRESENTATION_KEYS}


def paths_key(classifier_key: str, autoencoder_cfg: dict, figures_cfg: dict) -> str:
    """hash(classifier key + autoencoder config incl. seed + the figure settings that change
    numbers: the metrics' subsample and k, the hand-usage heuristic)."""
    ae = {k: v for k, v in autoencoder_cfg.items() if k not in NOT_IN_KEY}
    numeric = {k: v for k, v in figures_cfg.items() if k not in PRESENTATION_KEYS}
    return stable_hash({"classifier": classifier_key, "autoencoder": ae, "figures": numeric})


def write_hand_usage(
    path: Path,
    ids: list[str],
    class_names: list[str],
    labels: np.ndarray,
    ratios: np.ndarray,
    one_handed: np.ndarray,
) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "sign", "ratio", "one_handed"])
        writer.writerows(
            [ids[i], class_names[labels[i]], f"{ratios[i]:.4f}", int(one_handed[i])]
            for i in range(len(ids))
        )
    return path


def run_projection_stage(cfg: DictConfig, outcome: ClassifierOutcome) -> dict[str, float]:
    """DAE on the classifier's activations -> paths -> figures -> metrics, as one MLflow run.

    A FINISHED run with the same key (same classifier, autoencoder and figure settings) is
    reused instead, so re-running a sweep completes only the missing or failed jobs.
    """

    uri, experiment = cfg.tracking.uri, cfg.tracking.experiment
    experiment_id = ensure_experiment(uri, experiment)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    key = paths_key(outcome.key, resolved["autoencoder"], resolved["figures"])

    def reusable() -> dict[str, float] | None:
        found = find_finished(uri, experiment_id, key) if cfg.autoencoder.reuse else None
        if found is None:
            return None
        log.info("reusing paths run %s (key %s)", found.info.run_id, key)
        return {k: float(v) for k, v in found.data.metrics.items()} | {"reused": 1.0}

    # One job per configuration at a time, as for the classifier: two sweeps on one store train
    # each configuration once (the second waits, then reuses).
    reused = reusable()
    if reused is not None:
        return reused
    lock = key_lock(cfg.tracking, "paths", key)
    if lock.is_locked:
        log.info("another job is running paths configuration %s; waiting for it", key)
    with lock:
        return reusable() or _run_paths(cfg, outcome, experiment_id, key, resolved)


def _run_paths(
    cfg: DictConfig, outcome: ClassifierOutcome, experiment_id: str, key: str, resolved: dict
) -> dict[str, float]:
    from lstmpaths.autoencoder import resolve_precision

    ae, uri = cfg.autoencoder, cfg.tracking.uri
    params = flatten({k: resolved[k] for k in ("data", "classifier", "autoencoder", "figures")})
    tags = {
        STAGE_TAG: "paths",
        KEY_TAG: key,
        "lstmpaths.classifier_run_id": outcome.run_id,
        "lstmpaths.classifier_key": outcome.key,
        "lstmpaths.data_source": str(cfg.data.source),
        **sweep_context(),
    }
    run_name = f"paths-{ae.activation}-k{ae.bottleneck}-noise{ae.noise}-seed{ae.seed}"
    with (
        tracked_run(uri, experiment_id, run_name, tags, params) as run,
        tempfile.TemporaryDirectory() as tmp,
    ):
        # checked inside the run, so a bad setting in a sweep shows as a FAILED run with its error
        check_config(cfg)
        from lstmpaths.tracking import client

        mlflow_client = client(uri)
        # "auto" depends on the CPU: the run says what it actually trained with
        device = resolve_device(cfg.accelerator)
        precision = resolve_precision(ae.get("precision", "32"), device)
        mlflow_client.set_tag(run.info.run_id, "lstmpaths.dae_precision", precision)
        mlflow_client.set_tag(run.info.run_id, "lstmpaths.device", str(device.torch))
        started = time.perf_counter()
        arrays = outcome.arrays or load_activations(uri, outcome.run_id, tmp)
        metrics, files = _project(cfg, arrays, outcome.prepared, Path(tmp), run.info.run_id)
        metrics["job_seconds"] = time.perf_counter() - started
        log_metrics(mlflow_client, run.info.run_id, metrics)
        for path in files:
            mlflow_client.log_artifact(
                run.info.run_id,
                str(path),
                "figures" if path.suffix in (".png", ".gif", ".html") else None,
            )
        log.info(
            "paths run %s: %s",
            run.info.run_id,
            ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()),
        )
        return metrics


def _project(
    cfg: DictConfig, arrays: dict, prepared: Prepared, tmp: Path, run_id: str
) -> tuple[dict[str, float], list[Path]]:
    import torch

    from lstmpaths import figures as fig
    from lstmpaths.autoencoder import encode, reconstruction_mse, training_vectors
    from lstmpaths.data import pad_front
    from lstmpaths.metrics import (
        hand_ratio,
        hand_separation,
        neighbourhood_scores,
        pca_codes,
        subsample,
    )

    ae, figs = cfg.autoencoder, cfg.figures
    acts = arrays["activations"].astype(np.float32)
    labels, predictions, part = arrays["labels"], arrays["predictions"], arrays["part"]
    lengths, ids = arrays["lengths"], [str(s) for s in arrays["ids"]]
    class_names = [str(s) for s in arrays["class_names"]]
    train = np.flatnonzero(part == "train")

    # --- train the autoencoder on shuffled per-step vectors of the training sequences
    vectors = training_vectors(acts[train], lengths[train], str(ae.window), tuple(ae.study_steps))
    device = resolve_device(cfg.accelerator)
    net, fit = train_autoencoder(ae, vectors, device)
    val_vectors = fit.pop("val_vectors")

    # --- paths: every sequence's every step, in one batched call
    started = time.perf_counter()
    codes = encode(net, acts, device=device.torch)
    encode_seconds = time.perf_counter() - started
    k = int(ae.bottleneck)
    metrics: dict[str, float] = {
        "recon_mse_val": reconstruction_mse(net, val_vectors, device=device.torch),
        **fit,
        "encode_seconds": encode_seconds,
    }
    # --- faithfulness against the 100-D vectors, and the PCA baseline on the same points
    pick = subsample(len(vectors), int(figs.metrics_subsample), seed=0)
    high = vectors[pick]
    low = encode(net, high, device=device.torch)
    low_pca = pca_codes(high, k, fit_on=vectors)
    (trust, cont), (pca_trust, pca_cont) = neighbourhood_scores(
        high, [low, low_pca], int(figs.metrics_k)
    )
    metrics.update(
        trustworthiness=trust,
        continuity=cont,
        pca_trustworthiness=pca_trust,
        pca_continuity=pca_cont,
    )

    out: list[Path] = []
    np.savez_compressed(
        tmp / "paths.npz",
        codes=codes.astype(np.float32),
        labels=labels,
        predictions=predictions,
        part=part,
        ids=np.array(ids),
        lengths=lengths,
        class_names=np.array(class_names),
    )
    out.append(tmp / "paths.npz")
    torch.save(host_state(net), tmp / "autoencoder.pt")
    out.append(tmp / "autoencoder.pt")

    # --- hand usage (a metric and a figure): glove data only
    data = prepared.data
    ratios = None
    if data.n_channels == GLOVE_CHANNELS and data.channel_names[0] == "l_x":
        if list(data.ids) != ids:
            raise ConfigError(
                "the data no longer match the classifier's activations (ids differ); rerun with classifier.reuse=false"
            )
        raw = pad_front(data.sequences, acts.shape[1])
        ratios = np.array(
            [hand_ratio(r[:, :11], r[:, 11:], int(figs.hand_n_smallest)) for r in raw]
        )
        one = ratios < float(figs.hand_threshold)
        metrics["hand_separation"] = hand_separation(codes[train][:, -1], one[train])
        metrics["one_handed_share"] = float(one.mean())
        out.append(write_hand_usage(tmp / "hand_usage.csv", ids, class_names, labels, ratios, one))
    else:
        log.info(
            "hand usage figures skipped: the data are not two-glove recordings (%d channels)",
            data.n_channels,
        )
    (tmp / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    out.append(tmp / "config.yaml")

    # --- figures (lstmpaths-redraw draws them again from the stored arrays)
    started = time.perf_counter()
    view = fig.PathsView(
        codes=codes,
        labels=labels,
        predictions=predictions,
        part=part,
        ids=ids,
        class_names=class_names,
        desc=f"{ae.activation} bottleneck, noise {ae.noise}, seed {ae.seed}",
        hand_ratios=ratios,
        hand_threshold=float(figs.hand_threshold),
    )
    groups = sign_groups(figs.get("groups"), class_names, data.truth)
    out += fig.draw_paths_figures(view, groups, presentation(figs), tmp)
    metrics["figures_seconds"] = time.perf_counter() - started
    return metrics, out


def train_autoencoder(ae: DictConfig, vectors: np.ndarray, device: Device | None = None):
    """Fit the denoising autoencoder on per-step vectors (a seeded validation split held out).

    Returns the network with its best weights and a dict of fit facts (epochs, best epoch,
    seconds, and the validation vectors under "val_vectors").
    """
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping

    from lstmpaths.autoencoder import AutoencoderModule, DenoisingAutoencoder, resolve_precision

    stride = int(ae.get("step_stride", 1))
    if stride < 1:
        raise ConfigError(f"autoencoder.step_stride={stride}: must be 1 or more")
    check_size = int(ae.get("val_check_size", 0))
    if check_size < 0:
        raise ConfigError(f"autoencoder.val_check_size={check_size}: must be 0 (all) or more")
    device = device or resolve_device()
    precision = resolve_precision(ae.get("precision", "32"), device)
    rng = np.random.default_rng(int(ae.seed))
    order = rng.permutation(len(vectors))
    n_val = max(1, int(round(float(ae.val_fraction) * len(vectors))))
    # the validation vectors are the same whatever the stride, so runs stay comparable
    val_vectors, fit_vectors = vectors[order[:n_val]], vectors[np.sort(order[n_val:])[::stride]]
    # The per-epoch check (early stopping, best weights) needs an MSE, not every vector: a fixed
    # random part of the validation set gives it to 3 digits at a fraction of the cost. The
    # reported recon_mse_val is still measured on all of them.
    check_vectors = val_vectors[:check_size] if check_size else val_vectors
    L.seed_everything(int(ae.seed), verbose=False)
    net = DenoisingAutoencoder(
        vectors.shape[1], int(ae.bottleneck), str(ae.activation), tuple(ae.widths), float(ae.noise)
    )
    module = AutoencoderModule(
        net, float(ae.lr), str(ae.get("schedule", "constant")), int(ae.max_epochs)
    )
    best = BestWeights("epoch/val_mse")
    stop = EarlyStopping(
        monitor="epoch/val_mse", patience=int(ae.patience), min_delta=float(ae.get("min_delta", 0))
    )
    trainer = L.Trainer(
        max_epochs=int(ae.max_epochs),
        callbacks=[stop, best],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
        deterministic=True,
        accelerator=device.lightning,
        devices=1,
        precision=precision,
    )
    started = time.perf_counter()
    fit(
        trainer,
        module,
        train_dataloaders=VectorBatches(
            fit_vectors, int(ae.batch_size), shuffle=True, seed=int(ae.seed)
        ),
        val_dataloaders=VectorBatches(check_vectors, 8192, shuffle=False),
    )
    net.load_state_dict(best.state)
    return net, {
        "dae_epochs": float(trainer.current_epoch),
        "dae_best_epoch": float(best.epoch),
        "dae_seconds": time.perf_counter() - started,
        "dae_train_vectors": float(len(fit_vectors)),
        "val_vectors": val_vectors,
    }


class BestWeights(Callback):
    """Keeps a copy of the weights at the best monitored value (in memory, no checkpoint file)."""

    def __init__(self, monitor: str) -> None:
        self.monitor, self.best, self.state, self.epoch = monitor, float("inf"), None, -1

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        value = float(trainer.callback_metrics[self.monitor])
        if value < self.best:
            self.best, self.epoch = value, trainer.current_epoch
            self.state = {k: v.detach().clone() for k, v in pl_module.net.state_dict().items()}


class VectorBatches:
    """Index-sliced batches over an in-memory array: one tensor slice per batch, no collate."""

    def __init__(self, vectors: np.ndarray, batch_size: int, shuffle: bool, seed: int = 0) -> None:
        import torch

        self.x = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
        self.batch_size, self.shuffle = batch_size, shuffle
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return (len(self.x) + self.batch_size - 1) // self.batch_size

    def __iter__(self):
        import torch

        order = torch.randperm(len(self.x), generator=self.generator) if self.shuffle else None
        for start in range(0, len(self.x), self.batch_size):
            if order is None:
                yield (self.x[start : start + self.batch_size],)
            else:
                yield (self.x[order[start : start + self.batch_size]],)
