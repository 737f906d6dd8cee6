"""Every setting's type and range, checked once on the composed config with one-line errors.

Hydra composes the config from `conf/`; nothing there says that `classifier.batch_size` must be a
positive whole number, so a bad value used to end in a library traceback minutes into a job, and
a misspelt new key (`+autoencoder.nosie=0.5`, Hydra's own suggested fix) was silently ignored.
`check_config` walks the composed config against `RULES`: a value of the wrong type or out of
range, and a key no rule knows, is a `ConfigError` naming the key.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lstmpaths.data import ON_BAD_FILE, QUIRKS
from lstmpaths.devices import ACCELERATORS
from lstmpaths.errors import ConfigError
from lstmpaths.sources import SOURCES
from lstmpaths.splits import SPLITS


@dataclass(frozen=True)
class Rule:
    """What one setting accepts: a type, an optional range and choices, or None where allowed."""

    kind: type | tuple[type, ...] = object  # object: any value (lists, free text)
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # True: the value must be > low (else >= low)
    high_open: bool = False
    choices: tuple = ()
    nullable: bool = False

    def problem(self, value: Any) -> str | None:
        """Why `value` is refused, or None when it is fine."""
        if value is None:
            return None if self.nullable else "must be set"
        if self.choices:  # `precision=32` arrives as a number, `bottleneck="2"` as text
            ok = any(_is_choice(value, c) for c in self.choices)
            return None if ok else f"choose one of {_listing(self.choices)}"
        if self.kind is object:
            return None
        if self.kind is bool:
            return None if isinstance(value, bool) else "must be true or false"
        if self.kind is str:
            return None if isinstance(value, str) else "must be text"
        number = _number(value, whole=self.kind is int)
        if number is None:
            return "must be a whole number" if self.kind is int else "must be a number"
        too_low = self.low is not None and (
            number <= self.low if self.low_open else number < self.low
        )
        too_high = self.high is not None and (
            number >= self.high if self.high_open else number > self.high
        )
        return _range_text(self) if too_low or too_high else None


def _number(value: Any, whole: bool) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or (whole and not float(value).is_integer()):
        return None
    return float(value)


def _range_text(rule: Rule) -> str:
    parts = []
    if rule.low is not None:
        parts.append(f"{'>' if rule.low_open else '>='} {rule.low:g}")
    if rule.high is not None:
        parts.append(f"{'<' if rule.high_open else '<='} {rule.high:g}")
    return "must be " + " and ".join(parts)


def _is_choice(value: Any, choice: Any) -> bool:
    if isinstance(value, bool) or isinstance(choice, bool):  # 1 is not `true`, "True" is not either
        return value is choice
    return value == choice or str(value) == str(choice)


def _listing(choices: tuple) -> str:
    return ", ".join(str(c).lower() if isinstance(c, bool) else str(c) for c in choices)


def positive_int(**kw: Any) -> Rule:
    return Rule(int, low=1, **kw)


def count(**kw: Any) -> Rule:  # 0 allowed
    return Rule(int, low=0, **kw)


def positive(**kw: Any) -> Rule:
    return Rule(float, low=0, low_open=True, **kw)


def non_negative(**kw: Any) -> Rule:
    return Rule(float, low=0, **kw)


def fraction(**kw: Any) -> Rule:  # in (0, 1)
    return Rule(float, low=0, high=1, low_open=True, high_open=True, **kw)


ANY = Rule()
ANY_OR_NULL = Rule(nullable=True)
FLAG = Rule(bool)
TEXT = Rule(str)
SEED = count()

RULES: dict[str, Rule] = {
    "stage": Rule(choices=("classifier", "paths")),
    "accelerator": Rule(choices=ACCELERATORS),
    "threads": positive_int(nullable=True),
    "jobs": positive_int(),
    # data (the union of every source's keys; each source reads its own)
    "data.source": Rule(choices=SOURCES),
    "data.path": ANY_OR_NULL,  # text; data=activations: a list too (each source checks its own)
    "data.quirk": Rule(choices=QUIRKS),
    "data.on_bad_file": Rule(choices=ON_BAD_FILE),
    "data.max_file_mb": positive(),
    "data.max_steps": positive_int(),
    "data.maxlen": positive_int(nullable=True),
    "data.n_signs": Rule(int, low=2),
    "data.n_recordings": Rule(int, low=3),
    "data.seed": SEED,
    "data.n_extension_pairs": count(),
    "data.n_near_twins": count(),
    "data.n_control_pairs": count(),
    "data.n_mislabelled": count(),
    "data.one_handed_fraction": Rule(float, low=0, high=1),
    "data.standardize": Rule(choices=(True, False, "sequence")),
    "data.pool": ANY,  # a whole number >= 1 or "auto": data.frames_per_step checks it
    "data.split": Rule(choices=SPLITS),
    "data.train_size": ANY,  # a count or a fraction: splits.py checks it against the data
    "data.val_size": fraction(),
    "data.split_seed": SEED,
    "data.train_sessions": ANY,
    "data.val_sessions": ANY,
    "data.test_sessions": ANY,
    "data.dae_window": Rule(choices=("study", "signal")),
    "data.sign_groups": ANY_OR_NULL,
    # classifier
    "classifier.net._target_": TEXT,
    "classifier.net.hidden_size": positive_int(),
    "classifier.net.num_layers": Rule(int, low=1, high=3),
    "classifier.net.cell": Rule(choices=("lstm", "gru")),
    "classifier.net.layer": positive_int(nullable=True),
    "classifier.lr": positive(),
    "classifier.batch_size": positive_int(),
    "classifier.max_epochs": positive_int(),
    "classifier.patience": positive_int(),
    "classifier.lr_patience": count(),
    "classifier.precision": Rule(choices=("32", "bf16", "auto")),
    "classifier.grad_clip": non_negative(),
    "classifier.augment.noise": non_negative(),
    "classifier.augment.time_warp": non_negative(),
    "classifier.seed": SEED,
    "classifier.l1": non_negative(),
    "classifier.l2": non_negative(),
    "classifier.reuse": FLAG,
    "classifier.threads": positive_int(nullable=True),
    # autoencoder
    "autoencoder.bottleneck": Rule(choices=(2, 3)),
    "autoencoder.activation": Rule(choices=("linear", "tanh", "relu", "sigmoid")),
    "autoencoder.noise": non_negative(),
    "autoencoder.widths": ANY,
    "autoencoder.lr": positive(),
    "autoencoder.batch_size": positive_int(),
    "autoencoder.max_epochs": positive_int(),
    "autoencoder.patience": positive_int(),
    "autoencoder.min_delta": non_negative(),
    "autoencoder.schedule": Rule(choices=("constant", "cosine")),
    "autoencoder.step_stride": positive_int(),
    "autoencoder.val_fraction": fraction(),
    "autoencoder.val_check_size": count(),
    "autoencoder.precision": Rule(choices=("32", "bf16", "auto")),
    "autoencoder.seed": SEED,
    "autoencoder.window": Rule(choices=("study", "signal")),
    "autoencoder.study_steps": ANY,
    "autoencoder.reuse": FLAG,
    # figures
    "figures.log1p": FLAG,
    "figures.groups": ANY_OR_NULL,
    "figures.hand_threshold": non_negative(),
    "figures.hand_n_smallest": positive_int(),
    "figures.animation": FLAG,
    "figures.interactive": FLAG,
    "figures.plotlyjs": Rule(choices=("inline", "cdn")),
    "figures.max_misclassified_panels": count(),
    "figures.metrics_subsample": Rule(int, low=20),
    "figures.metrics_k": positive_int(),
    # tracking
    "tracking.uri": TEXT,
    "tracking.experiment": TEXT,
    "tracking.state_dir": Rule(str, nullable=True),
}

# Parts of the config that are not settings of lstmpaths: Hydra's own, and objects built with
# `_target_` whose constructor checks its arguments.
NOT_CHECKED = ("hydra",)


def leaves(config: Mapping, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, value) of every setting; lists are values, not folders."""
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from leaves(value, f"{name}.")
        else:
            yield name, value


def check_config(cfg: DictConfig | Mapping) -> None:
    """Raise ConfigError for the first unknown key or bad value (resolves interpolations)."""
    resolved = (
        OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    )
    for key, value in leaves({k: v for k, v in resolved.items() if k not in NOT_CHECKED}):
        rule = RULES.get(key)
        if rule is None:
            close = difflib.get_close_matches(key, list(RULES), n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise ConfigError(f"{key}: no such setting{hint}")
        problem = rule.problem(value)
        if problem:
            raise ConfigError(f"{key}={value!r}: {problem}")
