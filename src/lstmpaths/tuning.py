"""The tune sweep's Optuna study as pictures: optimisation history, parameter importances and
parallel coordinates (matplotlib PNGs, so the MLflow UI shows them without a plotting library).
No MLflow here: `sweep.log_study` puts them on the sweep's parent run."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

log = logging.getLogger("lstmpaths")


def draw_study_figures(study, out: Path, target_name: str) -> list[Path]:
    """The study's figures in `out`; the ones a study cannot have yet (importances need two
    finished trials that differ) are left out with a log line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as plots

    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    wanted = {"optimization_history": plots.plot_optimization_history}
    if len(complete) >= 2:
        wanted["param_importances"] = plots.plot_param_importances
        wanted["parallel_coordinate"] = plots.plot_parallel_coordinate
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for name, plot in wanted.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            try:
                axes = plot(study, target_name=target_name)
            except (ValueError, RuntimeError) as exc:  # e.g. importances of constant values
                log.info("optuna %s not drawn: %s", name, exc)
                continue
        figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
        figure.set_size_inches(9, 5.5)
        path = out / f"optuna_{name}.png"
        figure.savefig(path, dpi=90, bbox_inches="tight")
        plt.close(figure)
        files.append(path)
    return files
