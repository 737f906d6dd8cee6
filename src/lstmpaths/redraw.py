"""`lstmpaths-redraw RUN_ID [figures.key=value ...]`: draw a finished paths run's figures again
from its stored arrays, with other presentation settings, and log them to the same run.

Nothing is trained or encoded: the figures come from `paths.npz` (every recording's path and,
for glove data, its hand usage) and the run's `config.yaml`. Only settings that change no number may differ
(`pipeline.PRESENTATION_KEYS`); the run's metrics stay true to its figures.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from lstmpaths.errors import ConfigError, LstmpathsError


def parse_overrides(overrides: list[str]) -> dict:
    """`figures.log1p=false`-style arguments -> {"log1p": False}; only presentation keys."""
    from lstmpaths.pipeline import PRESENTATION_KEYS

    settings = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        name = key.removeprefix("figures.")
        if not sep or name not in PRESENTATION_KEYS:
            raise ConfigError(
                f"{item}: redraw takes figures.<key>=<value> with key one of "
                f"{', '.join(PRESENTATION_KEYS)} (other settings change the run's numbers: "
                "run the job again instead)"
            )
        settings[name] = yaml.safe_load(value)
    return settings


def redraw(uri: str, run_id: str, overrides: dict) -> list[str]:
    """Draw the run's figures again (settings of the run, `overrides` on top) and log them to
    the run's `figures/`. Returns the artifact paths logged. The downloads and drawings live in
    a temporary folder that is removed, whatever happens."""
    from mlflow.exceptions import MlflowException

    from lstmpaths.report import check_run_id
    from lstmpaths.tracking import STAGE_TAG, client

    check_run_id(run_id)
    mlflow_client = client(uri)
    try:
        run = mlflow_client.get_run(run_id)
    except MlflowException:
        raise ConfigError(f"run {run_id}: no such run in {uri}") from None
    if run.data.tags.get(STAGE_TAG) != "paths" or run.info.status != "FINISHED":
        raise ConfigError(f"run {run_id}: not a FINISHED paths run (nothing to redraw)")
    with tempfile.TemporaryDirectory(prefix="lstmpaths-redraw-") as tmp:
        files = _draw_again(uri, run, overrides, Path(tmp))
        for path in files:
            mlflow_client.log_artifact(run_id, str(path), "figures")
    mlflow_client.set_tag(
        run_id, "lstmpaths.redrawn", " ".join(f"{k}={v}" for k, v in overrides.items()) or "-"
    )
    return [f"figures/{path.name}" for path in files]


def _draw_again(uri: str, run, overrides: dict, folder: Path) -> list[Path]:
    """The figures of paths run `run`, drawn into `folder/figures` from its stored arrays."""
    from mlflow.artifacts import download_artifacts

    from lstmpaths import figures as fig
    from lstmpaths.pipeline import presentation
    from lstmpaths.prepare import sign_groups
    from lstmpaths.report import planted_truth, stored_hand_usage
    from lstmpaths.tracking import run_config

    run_id = run.info.run_id
    config = run_config(uri, run, folder / "config")
    figs = {**config.get("figures", {}), **overrides}
    ae = config["autoencoder"]
    npz = download_artifacts(
        run_id=run_id, artifact_path="paths.npz", dst_path=str(folder), tracking_uri=uri
    )
    with np.load(npz) as z:
        arrays = {k: z[k] for k in z.files}
    hands = stored_hand_usage(uri, run_id, arrays, folder / "hands")
    ratios = None if hands is None else hands[0]
    network = fig.network_name(
        config["data"].get("source"), config.get("classifier", {}).get("net", {}).get("cell")
    )
    codes = arrays["codes"].astype(np.float32)  # stored as float16 where it fits
    view = fig.PathsView.of_run(arrays, codes, ae, ratios, float(figs["hand_threshold"]), network)
    truth = None
    if figs.get("groups") is None:  # synthetic data: the planted relations name the groups
        truth = planted_truth(uri, run.data.tags["lstmpaths.classifier_run_id"], folder)
    out = folder / "figures"
    out.mkdir()
    groups = sign_groups(figs.get("groups"), view.class_names, truth)
    return fig.draw_paths_figures(view, groups, presentation(figs), out)


def main(argv: list[str] | None = None) -> int:
    from lstmpaths.run import silence_library_noise
    from lstmpaths.tracking import default_tracking_uri

    parser = argparse.ArgumentParser(
        prog="lstmpaths-redraw",
        description="Draw a finished paths run's figures again from its stored arrays (nothing "
        "is trained) and log them to the run, e.g. lstmpaths-redraw RUN_ID figures.log1p=false",
    )
    parser.add_argument("run_id", help="the paths run (MLflow run id)")
    parser.add_argument("overrides", nargs="*", help="figures.<key>=<value> presentation settings")
    parser.add_argument(
        "--tracking-uri",
        default=None,
        help="default: $MLFLOW_TRACKING_URI, else the project's mlruns/",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_intermixed_args(argv)  # overrides before or after --tracking-uri
    silence_library_noise()
    uri = args.tracking_uri or default_tracking_uri()
    started = time.perf_counter()
    try:
        files = redraw(uri, args.run_id, parse_overrides(args.overrides))
    except LstmpathsError as exc:
        if args.debug:
            raise
        print(f"lstmpaths-redraw: error: {exc}", file=sys.stderr)
        return 2
    print(
        f"redraw: {len(files)} figures logged to run {args.run_id} "
        f"({time.perf_counter() - started:.1f} s, nothing trained)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
