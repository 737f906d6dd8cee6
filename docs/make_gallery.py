"""Copy the README's gallery from the project's MLflow store into docs/gallery/, small.

Takes the newest FINISHED real-data paths run of the study's setting (linear, noise 0.1,
DAE seed 0, classifier seed 8) and the newest report run, downscales their figures to at most 1000 px wide with a
256-colour palette. `make gallery` runs it after the robustness sweep and its report.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from mlflow.artifacts import download_artifacts
from PIL import Image

from lstmpaths.tracking import default_tracking_uri, newest_run

OUT = Path(__file__).parent / "gallery"
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
PATHS_FIGURES = [
    "paths.png",
    "last_step.png",
    "hands.png",
    "group_drink_danger.png",
    "group_who_soon.png",
    "group_crazy_think.png",
    "group_sorry_crazy_you_think.png",
    "misclassified_test.png",
]
REPORT_FIGURES = ["pair_frequency.png", "paths_across_seeds.png", "cka_lstm_seeds.png"]


def shrink(src: str, dst: Path, width: int = 1000) -> None:
    image = Image.open(src).convert("RGB")
    if image.width > width:
        image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
    image.quantize(256).save(dst, optimize=True)
    print(f"{dst} ({dst.stat().st_size // 1024} KiB)")


def newest(uri: str, query: str):
    run = newest_run(uri, query)
    if run is None:
        raise SystemExit(f"no run matches {query!r}: run the robustness sweep and its report")
    return run


def main() -> None:
    uri = default_tracking_uri()
    OUT.mkdir(exist_ok=True)
    job = newest(
        uri,
        "tags.`lstmpaths.stage` = 'paths' and attributes.status = 'FINISHED' and "
        "params.`data.source` = 'auslan' and params.`autoencoder.activation` = 'linear' and "
        "params.`autoencoder.noise` = '0.1' and params.`autoencoder.seed` = '0' and "
        "params.`classifier.seed` = '8'",
    )
    report = newest(uri, "tags.`lstmpaths.stage` = 'report' and attributes.status = 'FINISHED'")
    with tempfile.TemporaryDirectory() as tmp:
        for name in PATHS_FIGURES:
            path = download_artifacts(
                run_id=job.info.run_id, artifact_path=f"figures/{name}", dst_path=tmp,
                tracking_uri=uri,
            )  # fmt: skip
            shrink(path, OUT / name)
        for name in REPORT_FIGURES:
            try:
                path = download_artifacts(
                    run_id=report.info.run_id, artifact_path=f"report/{name}", dst_path=tmp,
                    tracking_uri=uri,
                )  # fmt: skip
            except Exception:  # noqa: BLE001 - a report without LSTM retrains has no CKA
                continue
            shrink(path, OUT / name)


if __name__ == "__main__":
    main()
