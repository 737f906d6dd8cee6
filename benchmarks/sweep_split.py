"""Where a finished sweep's time went, read from its MLflow store:
    python benchmarks/sweep_split.py [TRACKING_URI] [SWEEP_ID] [--json]
Prints the sweep's wall time, the classifier's training time, the mean seconds per paths job
by stage (autoencoder, encoding, figures, the rest), the jobs' device and the store's MB a job."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench import folder_mb  # noqa: E402

from lstmpaths.tracking import client, default_tracking_uri, newest_run, sweep_runs  # noqa: E402


def split(uri: str, sweep_id: str) -> dict:
    parent = newest_run(
        uri, f"tags.`lstmpaths.stage` = 'sweep' and tags.`lstmpaths.sweep_id` = '{sweep_id}'"
    )
    if parent is None or not parent.info.end_time:
        raise SystemExit(f"{uri}: no finished sweep {sweep_id!r}")
    runs = sweep_runs(client(uri), parent.info.experiment_id, parent.info.run_id)
    paths = [r for r in runs if r.data.tags.get("lstmpaths.stage") == "paths"]
    classifiers = [r for r in runs if r.data.tags.get("lstmpaths.stage") == "classifier"]

    def mean(key: str) -> float:
        values = [r.data.metrics[key] for r in paths if key in r.data.metrics]
        return statistics.mean(values) if values else float("nan")

    folders = [Path(r.info.artifact_uri.removeprefix("file://")) for r in paths]
    sizes = [folder_mb(f) for f in folders if f.is_dir()]
    out = {
        "wall_s": (parent.info.end_time - parent.info.start_time) / 1000,
        "paths_jobs": len(paths),
        "classifier_train_s": [
            round(r.data.metrics.get("train_seconds", float("nan")), 1) for r in classifiers
        ],
        "job_s": mean("job_seconds"),
        "dae_s": mean("dae_seconds"),
        "encode_s": mean("encode_seconds"),
        "figures_s": mean("figures_seconds"),
        "mb_per_job": statistics.mean(sizes) if sizes else float("nan"),
        "device": sorted({r.data.tags.get("lstmpaths.device", "?") for r in paths}),
        "machine": sorted(
            {r.data.tags["lstmpaths.machine"] for r in runs if "lstmpaths.machine" in r.data.tags}
        ),
    }
    out["other_s"] = out["job_s"] - out["dae_s"] - out["encode_s"] - out["figures_s"]
    return out


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--json"]
    uri = args[0] if args else default_tracking_uri()
    result = split(uri, args[1] if len(args) > 1 else "robustness-auslan")
    if "--json" in sys.argv:
        print(json.dumps(result, indent=1))
    else:
        for key, value in result.items():
            print(f"{key:<20} {value:.2f}" if isinstance(value, float) else f"{key:<20} {value}")
