"""`lstmpaths-report`: which sign relationships survive retraining, from a sweep in MLflow.

Three steps: this module fetches the FINISHED paths runs of an experiment (optionally one sweep:
`--parent RUN_ID`), their codes (`paths.npz`) and their classifiers' activations;
`analysis.analyse` turns them into an `Analysis`; `report_files.write_report` writes a folder
with `report.md`, CSV tables and figures. The same folder is logged as a `report` run in
the experiment. The folder is written under a temporary name and renamed when complete, so a
failed report never leaves a half-written one behind.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import re
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from lstmpaths.analysis import Analysis
from lstmpaths.errors import ConfigError, LstmpathsError
from lstmpaths.report_files import write_report

log = logging.getLogger("lstmpaths")
# Every report folder holds this file: the only kind of non-empty folder a report replaces.
MARKER = ".lstmpaths-report"
AE_VARYING = ("bottleneck", "widths", "lr", "batch_size", "window", "max_epochs", "patience")


def fetch_runs(uri: str, experiment: str, parent: str | None) -> tuple[str, list]:
    """The experiment id and its FINISHED, complete paths runs (of one sweep when parent)."""
    from lstmpaths.tracking import COMPLETE_TAG, STAGE_TAG, client, newest_per_key, sweep_runs

    mlflow_client = client(uri)
    exp = mlflow_client.get_experiment_by_name(experiment)
    if exp is None:
        names = sorted(e.name for e in mlflow_client.search_experiments())
        raise ConfigError(
            f"--experiment {experiment}: no such experiment in {uri}; there are: "
            f"{', '.join(names) or 'none'}"
        )
    query = f"tags.`{STAGE_TAG}` = 'paths'"
    if parent:
        check_run_id(parent)
        if mlflow_client.search_runs([exp.experiment_id], f"attributes.run_id = '{parent}'") == []:
            raise ConfigError(f"--parent {parent}: no such run in experiment {experiment}")
        # its children and the runs of other sweeps its jobs reused
        every = sweep_runs(mlflow_client, exp.experiment_id, parent, query)
    else:
        every = mlflow_client.search_runs([exp.experiment_id], query, max_results=50000)
    # a configuration that two sweeps on one store both ran counts once, not as an extra seed
    complete = [
        r for r in every if r.info.status == "FINISHED" and r.data.tags.get(COMPLETE_TAG) == "1"
    ]
    done = list(newest_per_key(complete).values())
    if not done:
        statuses = sorted({r.info.status for r in every})
        raise ConfigError(
            f"--experiment {experiment}{f' --parent {parent}' if parent else ''}: no FINISHED "
            f"paths runs to report on ({len(every)} paths runs"
            f"{', statuses ' + ', '.join(statuses) if statuses else ''}); run a sweep first, "
            "e.g. lstmpaths-run -m +sweeps=smoke"
        )
    data_settings = {
        json.dumps(
            {k: v for k, v in r.data.params.items() if k.startswith("data.")}, sort_keys=True
        )
        for r in done
    }
    if len(data_settings) > 1:
        raise ConfigError(
            f"--experiment {experiment}: the runs were made on {len(data_settings)} different data "
            "settings (data.* params differ), so their relationships are not comparable; "
            "choose one sweep with --parent RUN_ID"
        )
    bottlenecks = {r.data.params.get("autoencoder.bottleneck") for r in done}
    if len(bottlenecks) > 1:
        raise ConfigError(
            f"--experiment {experiment}: runs with bottleneck {sorted(bottlenecks)} are mixed; "
            "choose one sweep with --parent RUN_ID"
        )
    return exp.experiment_id, done


def check_run_id(run_id: str) -> None:
    """A run id is letters, digits, '-' or '_' (MLflow's are 32 hex digits): anything else would
    change the meaning of the MLflow filter it goes into."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", run_id):
        raise ConfigError(f"--parent {run_id!r}: not a run id (letters and digits only)")


def safe_folder_name(name: str) -> str:
    """An experiment or run name as one harmless folder name (no '/', '..' or leading dot)."""
    cleaned = re.sub(r"\.{2,}", "_", name)  # no '..' anywhere, even between other characters
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", cleaned)
    cleaned = re.sub(r"_+", "_", cleaned).strip("._")
    return cleaned or "report"


def check_out_folder(out: Path) -> None:
    """Refuse a report folder whose contents a report would destroy: a file, the working folder
    or one above it, or a non-empty folder that is not an earlier lstmpaths report."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is a file, not a folder")
    cwd = Path.cwd().resolve()
    if out == cwd or out in cwd.parents:
        raise ConfigError(f"--out {out}: is the working folder or holds it; name a new folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise ConfigError(
            f"--out {out}: the folder holds files that are not an lstmpaths report (no {MARKER} "
            "in it); name an empty or new folder"
        )


def load_runs(uri: str, runs: list, cache: Path):
    """Download every run's paths and its classifier's activations (each file once); the
    recordings' hand usage comes with the first run's paths."""
    from mlflow.artifacts import download_artifacts

    from lstmpaths.analysis import PathsRun, Recordings
    from lstmpaths.figures import network_name

    varying = [
        key
        for key in AE_VARYING
        if len({r.data.params.get(f"autoencoder.{key}") for r in runs}) > 1
    ]
    loaded, recordings, reference_ids = [], None, None
    activations: dict[str, np.ndarray] = {}
    for n, r in enumerate(sorted(runs, key=lambda r: r.info.start_time), 1):
        folder = cache / r.info.run_id
        path = download_artifacts(
            run_id=r.info.run_id, artifact_path="paths.npz", dst_path=str(folder), tracking_uri=uri
        )
        with np.load(path) as z:
            ids = [str(s) for s in z["ids"]]
            if reference_ids is None:
                reference_ids = ids
                hands = stored_hand_usage(uri, r.info.run_id, z, cache / "hands")
                recordings = Recordings(
                    labels=z["labels"],
                    lengths=z["lengths"],
                    train=np.flatnonzero(z["part"] == "train"),
                    class_names=[str(s) for s in z["class_names"]],
                    one_handed=None if hands is None else hands[1],
                )
            elif ids != reference_ids:
                raise ConfigError(
                    f"run {r.info.run_id}: its recordings differ from the other runs' "
                    "(another data split); choose one sweep with --parent RUN_ID"
                )
            codes = z["codes"].astype(np.float32)  # stored as float16 where it fits
        classifier = r.data.tags["lstmpaths.classifier_run_id"]
        if classifier not in activations:
            apath = download_artifacts(
                run_id=classifier,
                artifact_path="activations.npz",
                dst_path=str(cache / classifier),
                tracking_uri=uri,
            )
            with np.load(apath) as z:
                activations[classifier] = z["activations"].astype(np.float32)
        params = r.data.params
        loaded.append(
            PathsRun(
                run_id=r.info.run_id,
                classifier_id=classifier,
                activation=params["autoencoder.activation"],
                noise=float(params["autoencoder.noise"]),
                seed=int(params["autoencoder.seed"]),
                codes=codes,
                metrics=dict(r.data.metrics),
                extra=", ".join(f"{k} {params.get(f'autoencoder.{k}')}" for k in varying),
                model=r.data.tags.get("lstmpaths.model")
                or f"seed {params.get('classifier.seed', '?')}",
                network=network_name(params.get("data.source"), params.get("classifier.net.cell")),
            )
        )
        if n % 10 == 0 or n == len(runs):
            print(f"  read {n}/{len(runs)} runs", flush=True)
    return loaded, recordings, activations


def classifier_facts(uri: str, classifier_ids: list[str]) -> dict[str, dict]:
    """Each classifier run's test accuracy, its 1-NN baseline, epochs and machine (what the
    report gives as a distribution over retrains)."""
    from lstmpaths.tracking import client

    mlflow_client, facts = client(uri), {}
    for run_id in classifier_ids:
        run = mlflow_client.get_run(run_id)
        m = run.data.metrics
        facts[run_id] = {
            "test_acc": m.get("test_acc", float("nan")),
            "baseline_1nn_test_acc": m.get("baseline_1nn_test_acc", float("nan")),
            "epochs": m.get("epochs", float("nan")),
            "machine": run.data.tags.get("lstmpaths.machine", "?"),
        }
    return facts


def stored_hand_usage(
    uri: str, run_id: str, arrays: Mapping, folder: Path
) -> tuple[np.ndarray, np.ndarray] | None:
    """A paths run's hand-usage ratios and one-handed flags, in the order of its recordings:
    from its `paths.npz` (`arrays`), or from the `hand_usage.csv` of runs stored before they
    moved there; None when the run has none (data that are not two-glove recordings)."""
    if "hand_ratios" in arrays:
        return np.asarray(arrays["hand_ratios"], float), np.asarray(arrays["one_handed"], bool)
    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException

    try:
        path = download_artifacts(
            run_id=run_id, artifact_path="hand_usage.csv", dst_path=str(folder), tracking_uri=uri
        )
    except (MlflowException, OSError):
        return None
    with open(path, newline="") as fh:
        rows = {row["id"]: row for row in csv.DictReader(fh)}
    ids = [str(s) for s in arrays["ids"]]
    if set(rows) != set(ids):
        return None
    ratios = np.array([float(rows[i]["ratio"]) for i in ids])
    return ratios, np.array([rows[i]["one_handed"] == "1" for i in ids])


def planted_truth(uri: str, classifier_run_id: str, cache: Path) -> dict | None:
    """The synthetic data's planted truth, regenerated from the classifier run's config."""
    from mlflow.artifacts import download_artifacts
    from omegaconf import OmegaConf

    from lstmpaths.prepare import prepare_data
    from lstmpaths.tracking import client

    path = download_artifacts(
        run_id=classifier_run_id, artifact_path="config.yaml", dst_path=str(cache / "config"),
        tracking_uri=uri,
    )  # fmt: skip
    cfg = OmegaConf.load(path)
    if cfg.data.source != "synthetic":
        return None
    data = prepare_data(cfg.data).data
    logged = client(uri).get_run(classifier_run_id).data.tags.get("lstmpaths.data_fingerprint")
    if logged != data.fingerprint:
        print(
            "report: the synthetic generator has changed since these runs were made "
            f"(fingerprint {data.fingerprint} vs {logged}); no ground-truth scores"
        )
        return None
    return data.truth


# --- the command -------------------------------------------------------------------------------


def build_report(
    uri: str,
    experiment: str,
    parent: str | None,
    out: Path,
    opts=None,
    log_run: bool = True,
) -> Analysis:
    """Fetch, analyse, write `out` atomically, log it as a `report` run. Returns the analysis."""
    from lstmpaths.analysis import Options, analyse, stability_summary
    from lstmpaths.tracking import STAGE_TAG, client, log_metrics, tracked_run

    started = time.perf_counter()
    opts = opts or Options()
    out = out.resolve()
    check_out_folder(out)  # before any work: a folder the report may not replace is refused now
    experiment_id, finished = fetch_runs(uri, experiment, parent)
    print(f"report: {len(finished)} FINISHED paths runs in {experiment}", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}-") as tmp:
        cache, staging = Path(tmp) / "cache", Path(tmp) / "report"
        staging.mkdir()
        runs, rec, activations = load_runs(uri, finished, cache)
        n_signs = len(rec.class_names)
        if opts.k > n_signs - 2:
            raise ConfigError(
                f"--k {opts.k}: the runs have {n_signs} signs, so k must be at most "
                f"{max(1, n_signs - 2)} (with k = {n_signs - 1} every pair is related)"
            )
        first = finished[0]
        truth = planted_truth(uri, first.data.tags["lstmpaths.classifier_run_id"], cache)
        facts = classifier_facts(uri, sorted(activations))
        result = analyse(runs, rec, activations, opts, truth, rec.one_handed, facts)
        groups = _groups(uri, first, cache, truth, rec.class_names)
        title = f"experiment {experiment}" + (f", sweep {parent}" if parent else "")
        files = write_report(result, runs, rec, staging, title, groups)
        (staging / MARKER).write_text("written by lstmpaths-report; replaced by the next one\n")
        # complete: swap it in. An older report of the same name is moved into the temporary
        # folder (deleted with it) only now, and only if it carries the marker.
        check_out_folder(out)  # again: the folder may have changed while the report ran
        if out.exists():
            out.rename(Path(tmp) / "previous")
        staging.rename(out)
    files = [out / f.name for f in files]
    print(f"report: wrote {out / 'report.md'} ({time.perf_counter() - started:.0f} s)")
    if log_run:
        tags = {STAGE_TAG: "report", "lstmpaths.report_runs": str(len(runs))}
        if parent:
            tags["mlflow.parentRunId"] = parent
            # the stability of each setting across DAE seeds, beside the sweep's quality means
            log_metrics(client(uri), parent, stability_summary(result))
        with tracked_run(
            uri, experiment_id, "report", tags, {"k": str(opts.k), "distance": opts.kind}
        ) as run:
            mlflow_client = client(uri)
            for f in files:
                mlflow_client.log_artifact(run.info.run_id, str(f), "report")
            for key, value in _headline(result).items():
                mlflow_client.log_metric(run.info.run_id, key, value)
        print(f"report: logged as run {run.info.run_id}")
    return result


def _groups(
    uri: str, run, cache: Path, truth: dict | None, class_names: list[str]
) -> list[list[str]]:
    """The named sign groups: data.sign_groups of the runs' config, else the planted pairs."""
    from lstmpaths.tracking import run_config

    groups = run_config(uri, run, cache / "paths-config").get("data", {}).get("sign_groups")
    if groups:
        return [[str(s) for s in g] for g in groups]
    if truth:
        return [list(p) for p in truth.get("extension_pairs", []) + truth.get("near_twins", [])]
    return []


def _headline(result: Analysis) -> dict[str, float]:
    c, n = result.of("dae")
    from lstmpaths.stability import robust_pairs

    out = {"robust_pairs_dae": float(len(robust_pairs(c, n))), "dae_runs": float(n)}
    if result.truth is not None:
        for relation in ("nearest", "related"):
            if relation in result.truth:
                out[f"truth_{relation}_precision"] = result.truth[relation]["precision"]
                out[f"truth_{relation}_recall"] = result.truth[relation]["recall"]
    return out


def projections(text: str) -> tuple[str, ...]:
    """`--projections pca,umap` (or none) as a tuple; an unknown name is refused."""
    from lstmpaths.crosscheck import METHODS

    names = tuple(n.strip() for n in text.split(",") if n.strip() and n.strip() != "none")
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise ConfigError(f"--projections {text}: choose from {', '.join(METHODS)} or none")
    return names


def main(argv: list[str] | None = None) -> int:
    from lstmpaths.analysis import Options
    from lstmpaths.tracking import default_tracking_uri

    parser = argparse.ArgumentParser(
        prog="lstmpaths-report",
        description="Which sign relationships survive retraining: a report from a sweep's runs.",
    )
    parser.add_argument("--experiment", default="lstmpaths", help="MLflow experiment name")
    parser.add_argument("--parent", help="only the runs of this sweep (its parent run id)")
    parser.add_argument("--out", type=Path, help="report folder (default reports/<experiment>)")
    parser.add_argument(
        "--tracking-uri",
        default=None,
        help="default: $MLFLOW_TRACKING_URI, else the project's mlruns/",
    )
    parser.add_argument("--k", type=int, default=3, help="nearest signs that count as related")
    parser.add_argument("--distance", choices=["path", "last"], default="path")
    parser.add_argument(
        "--projections",
        default="pca,umap",
        help="other projections of the activations to cross-check the DAE with: pca, umap, "
        "both (default) or none",
    )
    parser.add_argument("--no-log", action="store_true", help="do not log a report run")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    from lstmpaths.run import silence_library_noise

    silence_library_noise()
    uri = args.tracking_uri or default_tracking_uri()
    out = args.out or Path("reports") / safe_folder_name(
        args.experiment + (f"-{args.parent}" if args.parent else "")
    )
    try:
        if args.k < 1:
            raise ConfigError(f"--k {args.k}: must be at least 1")
        build_report(
            uri,
            args.experiment,
            args.parent,
            out,
            Options(k=args.k, kind=args.distance, projections=projections(args.projections)),
            not args.no_log,
        )
    except LstmpathsError as exc:
        if args.debug:
            raise
        print(f"lstmpaths-report: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
