"""One entry point from a data config (source name + options) to a SequenceSet."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from lstmpaths.data import (
    SequenceSet,
    apply_maxlen,
    concat,
    load_auslan,
    load_ts,
    require_auslan_path,
    require_ts_file,
    ts_test_sibling,
)
from lstmpaths.errors import ConfigError
from lstmpaths.synthetic import generate

SOURCES = ("auslan", "synthetic", "uea", "activations")
PLANTED = (
    "n_extension_pairs",
    "n_near_twins",
    "n_control_pairs",
    "n_mislabelled",
    "one_handed_fraction",
)


def setting(options: Mapping, key: str):
    """A data setting that must be there: its default lives in conf/data/<source>.yaml only
    (`prepare.data_config` reads it from there for code that builds options by hand)."""
    if key not in options:
        raise ConfigError(f"data.{key} is not set (conf/data/ gives every data group's defaults)")
    return options[key]


def check_path(source: str, options: Mapping) -> None:
    """Refuse a file source whose data.path is unset, not one path, or not there, without
    reading it: what a sweep checks once before its jobs start (each job would fail alike)."""
    if source not in ("auslan", "uea"):
        return  # synthetic reads no file; activations checks its own paths as it reads them
    path = options.get("path")
    if path and not isinstance(path, str):
        raise ConfigError(f"data.path={path!r}: the {source} source reads one path")
    if not path:
        what = "tctodd.tar.gz (or its folder)" if source == "auslan" else "a *_TRAIN.ts file"
        hint = ", or run `lstmpaths-data download auslan --dest DIR`" if source == "auslan" else ""
        raise ConfigError(f"data.path is not set: point it at {what}{hint}")
    if source == "auslan":
        require_auslan_path(Path(path))
    else:
        require_ts_file(Path(path))


def load_source(source: str, options: Mapping | None = None) -> SequenceSet:
    """Load `source` ("auslan" | "synthetic" | "uea" | "activations") with the options of its data config."""
    opts = dict(options or {})
    if source == "activations":
        from lstmpaths.activations import as_sequence_set, read_models

        return as_sequence_set(read_models(opts.get("path")))
    check_path(source, opts)
    if source == "auslan":
        return load_auslan(
            opts["path"],
            quirk=setting(opts, "quirk"),
            maxlen=setting(opts, "maxlen"),
            on_bad_file=setting(opts, "on_bad_file"),
            max_file_mb=setting(opts, "max_file_mb"),
        )
    if source == "synthetic":
        planted = {k: opts[k] for k in PLANTED if k in opts}  # the generator's own defaults
        return generate(
            n_signs=int(setting(opts, "n_signs")),
            n_recordings=int(setting(opts, "n_recordings")),
            seed=int(setting(opts, "seed")),
            maxlen=setting(opts, "maxlen"),
            **planted,
        )
    if source == "uea":
        path, max_steps = opts["path"], setting(opts, "max_steps")
        train = load_ts(path, max_steps=max_steps)
        if "_TRAIN" in Path(path).name and setting(opts, "split") == "given":
            test = load_ts(ts_test_sibling(path), train.class_names, max_steps)
            data = concat(train, test)
        else:
            data = train
        maxlen = setting(opts, "maxlen")
        if maxlen is not None:
            data = apply_maxlen(data, maxlen)
        return data
    raise ConfigError(f"data.source={source!r}: unknown source; choose one of {', '.join(SOURCES)}")
