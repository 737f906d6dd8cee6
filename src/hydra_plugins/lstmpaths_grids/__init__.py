"""A Hydra sweeper for study designs that are a union of grids, not one grid.

Why: the `robustness` design gives its primary setting (linear, noise 0.1) 10 DAE seeds, so that
a pair related in every seed has a 95% lower bound of 0.72, and the other 11 settings 3 seeds
each (43 jobs instead of 120 for 10 seeds everywhere). Hydra's basic sweeper runs one Cartesian
grid. This one runs each grid of `hydra.sweeper.grids` in turn (each like the basic sweeper's
`params`; a command-line override replaces a grid's value of the same key) and skips a job that
an earlier grid already holds. Jobs go through the configured launcher like any sweep.
"""

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

log = logging.getLogger(__name__)


@dataclass
class GridsSweeperConf:
    _target_: str = "hydra_plugins.lstmpaths_grids.GridsSweeper"
    max_batch_size: int | None = None
    # each grid: key -> "a,b,c" (Hydra's sweep syntax, range() included)
    grids: list[dict[str, Any]] = field(default_factory=list)


ConfigStore.instance().store(
    group="hydra/sweeper", name="lstmpaths_grids", node=GridsSweeperConf, provider="lstmpaths"
)


def grid_jobs(grids: list[dict[str, Any]], arguments: list[str], parser=None) -> list[list[str]]:
    """Every job of the union of `grids` crossed with the command line's `arguments`: a list
    of override lists, in grid order, without repeats."""
    parser = parser or OverridesParser.create()
    jobs: list[list[str]] = []
    seen: set[tuple[str, ...]] = set()
    for grid in grids or [{}]:
        lines = [f"{key}={value}" for key, value in grid.items()] + list(arguments)
        by_key = {o.key_or_group: o for o in parser.parse_overrides(lines)}  # the last one wins
        (batch,) = BasicSweeper.split_arguments(list(by_key.values()), None)
        for job in batch:
            if tuple(sorted(job)) not in seen:
                seen.add(tuple(sorted(job)))
                jobs.append(job)
    return jobs


def jobs_to_compose(jobs: list[list[str]], groups: set[str], parser=None) -> list[list[str]]:
    """The jobs whose compositions tell whether every job of `jobs` composes.

    Hydra composes each job once before launching any, so that a bad override fails the sweep
    at once; at about 0.18 s a composition that was 7.5-8 s of the 43-job `robustness` sweep.
    Where every override that differs between jobs sets a plain value (no config group of
    `groups`, nothing added, deleted or packaged, no whole dict or list), each lands in the
    same composed config whatever the others are, so whether it composes does not depend on
    them: composing one job for each distinct override (the first that holds it) is the same
    check. Otherwise every job."""
    parser = parser or OverridesParser.create()
    shared = set.intersection(*(set(job) for job in jobs)) if jobs else set()
    varying = {line for job in jobs for line in job} - shared
    for override in parser.parse_overrides(sorted(varying)):
        key = override.key_or_group
        if (
            key in groups
            or "/" in key
            or override.package is not None
            or override.is_add()
            or override.is_force_add()
            or override.is_delete()
            or isinstance(override.value(), (dict, list))
        ):
            return jobs
    chosen, covered = [], set()
    for job in jobs:
        if not set(job) <= covered:
            chosen.append(job)
            covered.update(job)
    return chosen


class GridsSweeper(BasicSweeper):
    def __init__(self, max_batch_size: int | None = None, grids: Any = None) -> None:
        super().__init__(max_batch_size=max_batch_size, params=None)
        self.grids = [
            OmegaConf.to_container(g, resolve=True) if OmegaConf.is_config(g) else dict(g)
            for g in (grids or [])
        ]

    def sweep(self, arguments: list[str]) -> Any:
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        jobs = grid_jobs(self.grids, arguments, parser)
        log.info("%d jobs from %d grid(s)", len(jobs), len(self.grids))
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        size = self.max_batch_size or len(jobs) or 1
        returns, done = [], 0
        for start in range(0, len(jobs), size):
            batch = jobs[start : start + size]
            self.validate_batch_is_legal(batch)
            returns.append(self.launcher.launch(batch, initial_job_idx=done))
            done += len(batch)
        return returns

    def validate_batch_is_legal(self, batch: list[list[str]]) -> None:
        groups = set(self.config.hydra.runtime.get("choices") or {})  # e.g. data, autoencoder
        try:
            super().validate_batch_is_legal(jobs_to_compose(batch, groups))
        except ConfigCompositionException as exc:  # a misspelt key, a missing config file
            print(
                f"lstmpaths-run: error: a sweep job's overrides: {one_line(exc)}", file=sys.stderr
            )
            sys.exit(2)


def one_line(exc: BaseException) -> str:
    """Hydra's message for a composition error (several lines, the OmegaConf error that caused
    it below) as one line: 'Could not override 'a.b'. To append to your config use +a.b=1 (Key
    'b' is not in struct)'."""
    text = " ".join(str(exc).split())
    cause = exc.__cause__
    if cause is not None and str(cause).strip():
        text += f" ({str(cause).strip().splitlines()[0]})"
    return text
