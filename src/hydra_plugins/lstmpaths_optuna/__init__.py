"""A small Hydra sweeper that drives a current optuna (>= 4) directly with ask/tell.

Why not hydra-optuna-sweeper: its last release pins optuna < 3, whose 2.10 breaks on
SQLAlchemy 2 (which MLflow 3 needs). This plugin is ~100 lines, keeps the Hydra launcher (so
trials run in parallel on the joblib launcher like any sweep), and stores the study in a
database so that re-running the same line continues the same study.
"""

import logging
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


@dataclass
class OptunaSweeperConf:
    _target_: str = "hydra_plugins.lstmpaths_optuna.OptunaSweeper"
    storage: str = "sqlite:///optuna.db"
    study_name: str = "lstmpaths"
    direction: str = "maximize"
    n_trials: int = 8
    n_jobs: int = 2  # trials asked (and launched) together
    seed: int = 0
    # name -> {type: float|int|categorical, low, high, log, choices}
    params: dict[str, Any] = field(default_factory=dict)


ConfigStore.instance().store(
    group="hydra/sweeper", name="lstmpaths_optuna", node=OptunaSweeperConf, provider="lstmpaths"
)


def suggest(trial, name: str, spec: dict[str, Any]) -> Any:
    kind = spec.get("type", "float")
    if kind == "float":
        return trial.suggest_float(
            name, float(spec["low"]), float(spec["high"]), log=bool(spec.get("log", False))
        )
    if kind == "int":
        return trial.suggest_int(
            name, int(spec["low"]), int(spec["high"]), log=bool(spec.get("log", False))
        )
    if kind == "categorical":
        return trial.suggest_categorical(name, list(spec["choices"]))
    raise ValueError(f"hydra.sweeper.params.{name}.type={kind!r}: choose float, int or categorical")


class OptunaSweeper(Sweeper):
    def __init__(
        self,
        storage: str,
        study_name: str,
        direction: str,
        n_trials: int,
        n_jobs: int,
        seed: int,
        params: dict[str, Any],
    ) -> None:
        super().__init__()
        self.storage, self.study_name, self.direction = storage, study_name, direction
        self.n_trials, self.n_jobs, self.seed = n_trials, n_jobs, seed
        self.params = (
            OmegaConf.to_container(params, resolve=True)
            if OmegaConf.is_config(params)
            else dict(params)
        )
        self.launcher = None
        self.config: DictConfig | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> Any:
        import optuna

        if self.storage.startswith("sqlite:///"):
            Path(self.storage.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(
            storage=self.storage,
            study_name=self.study_name,
            direction=self.direction,
            sampler=optuna.samplers.TPESampler(
                seed=self.seed + len(optuna.get_all_study_names(self.storage))
            ),
            load_if_exists=True,
        )
        done_before = len(study.trials)
        log.info(
            "optuna study %r in %s: %d trials so far, %d more",
            self.study_name,
            self.storage,
            done_before,
            self.n_trials,
        )
        job_idx = 0
        remaining = self.n_trials
        while remaining > 0:
            trials = [study.ask() for _ in range(min(self.n_jobs, remaining))]
            batch = []
            for trial in trials:
                values = {name: suggest(trial, name, spec) for name, spec in self.params.items()}
                batch.append([*arguments, *(f"{k}={v}" for k, v in values.items())])
            results = self.launcher.launch(batch, initial_job_idx=job_idx)
            for trial, result in zip(trials, results, strict=True):
                try:
                    value = float(result.return_value)
                except Exception as exc:  # the job raised: the trial failed, the study goes on
                    log.warning("trial %d failed: %s", trial.number, exc)
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                    continue
                if math.isnan(value):
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                else:
                    study.tell(trial, value)
            job_idx += len(batch)
            remaining -= len(batch)
        from lstmpaths.sweep import log_study

        # the value each job returns: trustworthiness of its paths, or the classifier's accuracy
        target = (
            "test_acc"
            if self.config and self.config.get("stage") == "classifier"
            else ("trustworthiness")
        )
        log_study(study, target)
        dashboard = Path(sys.executable).parent / "optuna-dashboard"
        print(f"optuna study {self.study_name}: {dashboard} --host 127.0.0.1 {self.storage}")
        complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if complete:
            log.info(
                "best trial %d: value %.4f, params %s",
                study.best_trial.number,
                study.best_value,
                study.best_params,
            )
        return study
