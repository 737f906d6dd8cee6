"""The data stage: a data config -> the recordings, their split and padded length (`Prepared`),
and the named sign groups checked against the data's classes. No training, no MLflow."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lstmpaths.data import SequenceSet, frames_per_step, padded_length, pool_frames
from lstmpaths.errors import ConfigError
from lstmpaths.processes import LastValue
from lstmpaths.sources import load_source, setting
from lstmpaths.splits import Split, make_split


def stable_hash(obj: Any) -> str:
    """16 hex digits of sha256 over the JSON of `obj` (keys sorted): the same settings, the same key."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class Prepared:
    data: SequenceSet
    split: Split
    maxlen: int
    # data=activations: the models whose states the files hold (each stands in for a
    # classifier run); empty when lstmpaths trains its own classifier
    models: list = field(default_factory=list)


# The last data a process prepared: parsing the Auslan archive again for each of a sweep
# worker's jobs would cost ~1 s a job.
_last_prepared: LastValue[Prepared] = LastValue()


def prepare_data(data_cfg: DictConfig | dict) -> Prepared:
    options = (
        OmegaConf.to_container(data_cfg, resolve=True)
        if isinstance(data_cfg, DictConfig)
        else dict(data_cfg)
    )
    path = Path(options["path"]) if isinstance(options.get("path"), str) else None
    if options.get("source") == "activations" or (path is not None and not path.is_file()):
        return _prepare(options)  # a folder (or a missing path): no cheap way to see a change
    stat = path.stat() if path is not None else None
    key = stable_hash([options, stat and (stat.st_size, stat.st_mtime_ns)])
    return _last_prepared.get(key, lambda: _prepare(options))


def _prepare(options: dict) -> Prepared:
    if setting(options, "source") == "activations":
        from lstmpaths.activations import as_sequence_set, read_models

        models = read_models(options.get("path"))
        data = as_sequence_set(models)
        return Prepared(
            data, make_split(data, options), models[0].arrays["activations"].shape[1], models
        )
    data = load_source(setting(options, "source"), options)
    maxlen = setting(options, "maxlen")
    # configs stored by versions before `data.pool` (the report re-prepares them) meant 1
    k = frames_per_step(data.lengths, options.get("pool", 1))
    if k > 1:  # maxlen counted frames; the padded length is now the longest pooled sequence
        data, maxlen = pool_frames(data, k), None
    split = make_split(data, options)
    return Prepared(data, split, padded_length(data, maxlen))


def data_config(source: str, **overrides) -> dict:
    """A data group's settings as `conf/data/<source>.yaml` gives them (the one place their
    defaults live), with `overrides`: for code that prepares data without composing a job."""
    from lstmpaths.layout import config_root

    options = OmegaConf.to_container(
        OmegaConf.load(config_root() / "conf" / "data" / f"{source}.yaml"), resolve=True
    )
    return {**options, **overrides}


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
