"""The orchestration of one `lstmpaths-run` job: the only layer that opens MLflow runs.

classifier stage: key -> (reuse a FINISHED run with that key | lock, fit, evaluate, extract
activations, store them) -> the activations handed on in memory.
paths stage: key -> (reuse | lock, project, write arrays and figures, log them).
The stages' work is done by plain functions on arrays (prepare, classifier, autoencoder,
projection, figures); this module adds keys, locks, runs, params, metrics and artifacts.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from lightning.pytorch.loggers import MLFlowLogger
from omegaconf import DictConfig, OmegaConf

from lstmpaths.devices import Device, machine_description, resolve_device, resolve_precision
from lstmpaths.errors import ConfigError
from lstmpaths.prepare import Prepared, prepare_data, sign_groups, stable_hash
from lstmpaths.processes import LastValue
from lstmpaths.settings import check_config
from lstmpaths.sweep import sweep_context
from lstmpaths.tracking import (
    KEY_TAG,
    STAGE_TAG,
    ensure_experiment,
    find_finished,
    flatten,
    log_metrics,
    mark_reused,
    store_folder,
    tracked_run,
)

if TYPE_CHECKING:
    from lstmpaths.activations import ActivationFile

log = logging.getLogger("lstmpaths")
MODEL_TAG = "lstmpaths.model"  # how the report names a classifier: its seed, or a file's name

# Config groups only the paths stage reads.
PATHS_ONLY = ("autoencoder", "figures")

# Keys that change how a run is executed or tracked, or guard input sizes, not what it computes.
NOT_IN_KEY = {"reuse", "threads", "max_file_mb", "max_steps"}


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
    model: str = ""  # the report's name for it (MODEL_TAG): "seed 8", or an activation file's name


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


def preflight(cfg: DictConfig, prepared: Prepared) -> None:
    """Settings a job would only trip over after minutes of training, checked up front."""
    device = resolve_device(cfg.accelerator)  # a GPU asked for and missing: said now
    if cfg.stage == "paths":
        resolve_precision(cfg.autoencoder.precision, device)
        sign_groups(cfg.figures.get("groups"), prepared.data.class_names, prepared.data.truth)


def run_classifier_stage(
    cfg: DictConfig, prepared: Prepared | None = None, model: ActivationFile | None = None
) -> ClassifierOutcome:
    """Reuse the FINISHED classifier with this key, or train it (once, even with parallel jobs).
    `model` (data=activations): import that file's states as the classifier run instead."""
    uri, experiment = cfg.tracking.uri, cfg.tracking.experiment
    prepared = prepared or prepare_data(cfg.data)
    data_cfg = OmegaConf.to_container(cfg.data, resolve=True)
    if model is None:
        clf_cfg = OmegaConf.to_container(cfg.classifier, resolve=True)
        key = classifier_key(data_cfg, prepared.data.fingerprint, clf_cfg)
    else:  # the file's bytes say what it holds, wherever it lies
        data_cfg.pop("path", None)
        key = classifier_key(data_cfg, model.fingerprint, {"imported": True})
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
            if found is None and model is not None:
                return _import_activations(cfg, prepared, model, key, experiment_id)
            if found is None:
                return _train_classifier(cfg, prepared, key, experiment_id)
    log.info("reusing classifier run %s (key %s)", found.info.run_id, key)
    mark_reused(uri, found, sweep_context().get("mlflow.parentRunId"))
    metrics = {k: float(v) for k, v in found.data.metrics.items()}
    model_name = found.data.tags.get(MODEL_TAG, f"seed {cfg.classifier.seed}")
    return ClassifierOutcome(found.info.run_id, key, True, metrics, prepared, model=model_name)


def weaker_than_baseline_hint(data_cfg) -> str:
    """What to try when the LSTM loses to 1-NN: the small-data settings not yet in use."""
    untried = [
        f"data.{key}={value}"
        for key, value in (("standardize", "sequence"), ("pool", "auto"))
        if str(data_cfg.get(key)) != value
    ]
    if untried:
        return f"Few or long recordings: try {' and '.join(untried)} (README, Small data sets)"
    return "Few training recordings per class? More of them help most (README, Small data sets)"


def _train_classifier(
    cfg: DictConfig, prepared: Prepared, key: str, experiment_id: str
) -> ClassifierOutcome:
    """One classifier run: fit, evaluate, extract activations, store and log them."""
    from lstmpaths.baseline import nearest_neighbour_accuracy
    from lstmpaths.classifier import (
        classifier_precision,
        evaluation_metrics,
        extract_activations,
        fit_classifier,
        padded_inputs,
        standardizer,
        write_classifier_files,
    )
    from lstmpaths.tracking import client

    uri = cfg.tracking.uri
    data, split = prepared.data, prepared.split
    device = resolve_device(cfg.accelerator)
    per_sequence = cfg.data.standardize == "sequence"
    scale = standardizer(data, split.train) if cfg.data.standardize is True else None
    inputs = padded_inputs(data, prepared.maxlen, scale, per_sequence)
    tags = {
        STAGE_TAG: "classifier",
        KEY_TAG: key,
        "lstmpaths.data_fingerprint": data.fingerprint,
        "lstmpaths.data_source": data.source,
        "lstmpaths.split": str(cfg.data.split),
        MODEL_TAG: f"seed {cfg.classifier.seed}",
        **sweep_context(),  # trained inside a sweep: a child of its parent run too
    }
    resolved = OmegaConf.to_container(cfg, resolve=True)
    wanted = {"data": resolved["data"], "classifier": resolved["classifier"]}
    params = flatten({**wanted, "threads": resolved.get("threads")})
    run_name = f"classifier-{data.source}-seed{cfg.classifier.seed}"
    with (
        tracked_run(uri, experiment_id, run_name, tags, params) as run,
        tempfile.TemporaryDirectory() as tmp,
    ):
        run_id = run.info.run_id
        # inside the run: a bad setting in a sweep shows as a FAILED run. Only the settings a
        # classifier uses: the job that trains the classifier every job shares must not fail it
        # over its own autoencoder or figure settings (its paths run fails on those instead).
        check_config(OmegaConf.masked_copy(cfg, [k for k in cfg if k not in PATHS_ONLY]))
        curves = CurvesOnlyMLFlowLogger(tracking_uri=uri, run_id=run_id)  # never ./mlruns
        net, metrics = fit_classifier(
            cfg.classifier, inputs, data, split, device, Path(tmp) / "checkpoints", curves
        )
        activations, probs = extract_activations(net, inputs, device=device.torch)
        metrics = evaluation_metrics(data.labels, probs.argmax(1), probs, split) | metrics
        # the trivial classifier on the same split: paths of a weaker network show little
        metrics["baseline_1nn_test_acc"] = nearest_neighbour_accuracy(
            data.sequences, data.labels, split.train, split.test
        )
        mlflow_client = client(uri)
        log_metrics(mlflow_client, run_id, metrics)
        mlflow_client.set_tag(run_id, "lstmpaths.machine", machine_description(device))
        mlflow_client.set_tag(
            run_id,
            "lstmpaths.classifier_precision",
            classifier_precision(cfg.classifier.precision, device, cfg.classifier.net.cell),
        )
        if metrics["test_acc"] < metrics["baseline_1nn_test_acc"]:
            warning = (
                f"the classifier's test accuracy {metrics['test_acc']:.3f} is below a 1-nearest-"
                f"neighbour baseline's {metrics['baseline_1nn_test_acc']:.3f}: its paths show "
                f"little. {weaker_than_baseline_hint(cfg.data)}"
            )
            log.warning(warning)
            mlflow_client.set_tag(run_id, "lstmpaths.warning", warning)
        out = Path(tmp) / "artifacts"
        stored = write_classifier_files(
            out, net, scale, activations, probs, data, split, per_sequence
        )
        (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
        for path in sorted(out.iterdir()):
            artifact_dir = "figures" if path.suffix == ".png" else None
            mlflow_client.log_artifact(run_id, str(path), artifact_dir)
        log.info(
            "classifier %s: test_acc %.4f (1-NN baseline %.4f), val_acc %.4f, %d epochs in %.0f s",
            run_id,
            metrics["test_acc"],
            metrics["baseline_1nn_test_acc"],
            metrics["val_acc"],
            metrics["epochs"],
            metrics["train_seconds"],
        )
        return ClassifierOutcome(
            run_id, key, False, metrics, prepared, stored, f"seed {cfg.classifier.seed}"
        )


def _import_activations(
    cfg: DictConfig, prepared: Prepared, model: ActivationFile, key: str, experiment_id: str
) -> ClassifierOutcome:
    """One classifier-stage run for a model whose states the user brought: the same
    `activations.npz` layout a trained classifier stores, so everything downstream (paths,
    figures, the report across models) reads it the same way."""
    from lstmpaths.activations import accuracy_metrics, stored_arrays
    from lstmpaths.tracking import client

    uri = cfg.tracking.uri
    part = prepared.split.part_of(len(prepared.data))
    tags = {
        STAGE_TAG: "classifier",
        KEY_TAG: key,
        MODEL_TAG: model.name,
        "lstmpaths.data_fingerprint": model.fingerprint,
        "lstmpaths.data_source": "activations",
        "lstmpaths.imported_from": str(model.path.resolve()),
        "lstmpaths.split": str(cfg.data.split),
        **sweep_context(),
    }
    params = flatten({"data": OmegaConf.to_container(cfg.data, resolve=True)})
    params["data.path"] = str(model.path)
    with (
        tracked_run(uri, experiment_id, f"activations-{model.name}", tags, params) as run,
        tempfile.TemporaryDirectory() as tmp,
    ):
        check_config(cfg)
        stored = stored_arrays(model, part)
        metrics = accuracy_metrics(model, part)
        mlflow_client = client(uri)
        log_metrics(mlflow_client, run.info.run_id, metrics)
        out = Path(tmp)
        np.savez_compressed(out / "activations.npz", **stored)
        (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
        for name in ("activations.npz", "config.yaml"):
            mlflow_client.log_artifact(run.info.run_id, str(out / name))
        shape = "x".join(str(d) for d in stored["activations"].shape)
        log.info("imported %s (%s) as run %s", model.path, shape, run.info.run_id)
        return ClassifierOutcome(run.info.run_id, key, False, metrics, prepared, stored, model.name)


class CurvesOnlyMLFlowLogger(MLFlowLogger):
    """Lightning's MLFlowLogger, except that it never ends the run.

    The stock `finalize` marks the run FINISHED when `fit` returns, before the activations and
    other artifacts are logged; a parallel job would then reuse a run that is not complete.
    tracked_run ends the run once everything is in.
    """

    def finalize(self, status: str = "success") -> None:  # noqa: ARG002
        return


# The last classifier's activations a process loaded: its stored files never change once it
# FINISHED, and reading its ~90 MB again would cost ~0.3 s of each of a sweep worker's jobs.
_last_activations: LastValue[dict[str, np.ndarray]] = LastValue()


def load_activations(uri: str, run_id: str, folder: str) -> dict[str, np.ndarray]:
    """A classifier run's `activations.npz`, read-only, so no job changes the next one's."""
    from lstmpaths.tracking import client

    def read() -> dict[str, np.ndarray]:
        local = client(uri).download_artifacts(run_id, "activations.npz", folder)
        with np.load(local, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        for array in arrays.values():
            array.flags.writeable = False
        return arrays

    return _last_activations.get((uri, run_id), read)


# Figure settings that change only how the pictures look, never a number: left out of the
# paths key, and the ones `lstmpaths-redraw` may change on a finished run.
PRESENTATION_KEYS = (
    "log1p",
    "groups",
    "animation",
    "interactive",
    "plotlyjs",
    "max_misclassified_panels",
)


def presentation(figures_cfg) -> dict:
    return {k: figures_cfg.get(k) for k in PRESENTATION_KEYS}


def paths_key(classifier_key: str, autoencoder_cfg: dict, figures_cfg: dict) -> str:
    """hash(classifier key + autoencoder config incl. seed + the figure settings that change
    numbers: the metrics' subsample and k, the hand-usage heuristic)."""
    ae = {k: v for k, v in autoencoder_cfg.items() if k not in NOT_IN_KEY}
    numeric = {k: v for k, v in figures_cfg.items() if k not in PRESENTATION_KEYS}
    return stable_hash({"classifier": classifier_key, "autoencoder": ae, "figures": numeric})


@dataclass
class PathsOutcome:
    run_id: str
    metrics: dict[str, float]
    reused: bool


def run_projection_stage(cfg: DictConfig, outcome: ClassifierOutcome) -> PathsOutcome:
    """DAE on the classifier's activations -> paths -> figures -> metrics, as one MLflow run.

    A FINISHED run with the same key (same classifier, autoencoder and figure settings) is
    reused instead, so re-running a sweep completes only the missing or failed jobs.
    """

    uri, experiment = cfg.tracking.uri, cfg.tracking.experiment
    experiment_id = ensure_experiment(uri, experiment)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    key = paths_key(outcome.key, resolved["autoencoder"], resolved["figures"])

    def reusable() -> PathsOutcome | None:
        found = find_finished(uri, experiment_id, key) if cfg.autoencoder.reuse else None
        if found is None:
            return None
        log.info("reusing paths run %s (key %s)", found.info.run_id, key)
        mark_reused(uri, found, sweep_context().get("mlflow.parentRunId"))
        metrics = {k: float(v) for k, v in found.data.metrics.items()}
        return PathsOutcome(found.info.run_id, metrics, reused=True)

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
) -> PathsOutcome:
    ae, uri = cfg.autoencoder, cfg.tracking.uri
    imported = bool(outcome.prepared.models)  # no classifier of ours: its settings mean nothing
    groups = ("data",) if imported else ("data", "classifier")
    params = flatten({k: resolved[k] for k in (*groups, "autoencoder", "figures")})
    tags = {
        STAGE_TAG: "paths",
        KEY_TAG: key,
        MODEL_TAG: outcome.model,
        "lstmpaths.classifier_run_id": outcome.run_id,
        "lstmpaths.classifier_key": outcome.key,
        "lstmpaths.data_source": str(cfg.data.source),
        **sweep_context(),
    }
    run_name = f"paths-{ae.activation}-k{ae.bottleneck}-noise{ae.noise}-seed{ae.seed}"
    if imported:
        run_name += f"-{outcome.model}"
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
        precision = resolve_precision(ae.precision, device)
        mlflow_client.set_tag(run.info.run_id, "lstmpaths.dae_precision", precision)
        mlflow_client.set_tag(run.info.run_id, "lstmpaths.device", str(device.torch))
        started = time.perf_counter()
        arrays = outcome.arrays or load_activations(uri, outcome.run_id, tmp)
        metrics, files, warning = _paths_files(
            cfg, arrays, outcome.prepared.data, device, Path(tmp)
        )
        metrics["job_seconds"] = time.perf_counter() - started
        log_metrics(mlflow_client, run.info.run_id, metrics)
        if warning:
            mlflow_client.set_tag(run.info.run_id, "lstmpaths.warning", warning)
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
        return PathsOutcome(run.info.run_id, metrics, reused=False)


def _paths_files(
    cfg: DictConfig, arrays: dict, data, device: Device, out: Path
) -> tuple[dict, list[Path], str | None]:
    """Project, then write the run's arrays, config and figures into `out`. Returns the run's
    metrics, its files and a warning for the user (None: nothing to say)."""
    from lstmpaths import figures as fig
    from lstmpaths.projection import project, write_paths_files

    ae, figs = cfg.autoencoder, cfg.figures
    projection = project(ae, figs, arrays, data, device)
    files = write_paths_files(out, projection, arrays)
    (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    files.append(out / "config.yaml")
    started = time.perf_counter()  # the figures (lstmpaths-redraw draws them again later)
    network = fig.network_name(cfg.data.source, cfg.classifier.net.get("cell"))
    view = fig.PathsView.of_run(
        arrays, projection.codes, ae, projection.hand_ratios, float(figs.hand_threshold), network
    )
    groups = sign_groups(figs.get("groups"), view.class_names, data.truth)
    files += fig.draw_paths_figures(view, groups, presentation(figs), out)
    projection.metrics["figures_seconds"] = time.perf_counter() - started
    return projection.metrics, files, projection.warning
