"""One entry point from a data config (source name + options) to a SequenceSet."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from lstmpaths.data import (
    MAX_FILE_MB,
    MAX_STEPS,
    SequenceSet,
    apply_maxlen,
    concat,
    load_auslan,
    load_ts,
    ts_test_sibling,
)
from lstmpaths.errors import ConfigError
from lstmpaths.synthetic import generate

SOURCES = ("auslan", "synthetic", "uea")


def load_source(source: str, options: Mapping | None = None) -> SequenceSet:
    """Load `source` ("auslan" | "synthetic" | "uea") with the options of its data config."""
    opts = dict(options or {})
    if source == "auslan":
        path = opts.get("path")
        if not path:
            raise ConfigError(
                "data.path is not set: point it at tctodd.tar.gz (or its folder), or run "
                "`lstmpaths-data download auslan --dest DIR`"
            )
        return load_auslan(
            path,
            quirk=opts.get("quirk", "drop"),
            maxlen=opts.get("maxlen", 90),
            on_bad_file=opts.get("on_bad_file", "error"),
            max_file_mb=opts.get("max_file_mb", MAX_FILE_MB),
        )
    if source == "synthetic":
        planted = {
            k: opts[k]
            for k in (
                "n_extension_pairs",
                "n_near_twins",
                "n_control_pairs",
                "n_mislabelled",
                "one_handed_fraction",
            )
            if k in opts
        }
        return generate(
            n_signs=int(opts.get("n_signs", 94)),
            n_recordings=int(opts.get("n_recordings", 27)),
            seed=int(opts.get("seed", 0)),
            maxlen=opts.get("maxlen", 90),
            **planted,
        )
    if source == "uea":
        path = opts.get("path")
        if not path:
            raise ConfigError(
                "data.path is not set: point it at a *_TRAIN.ts file (or any .ts file)"
            )
        max_steps = opts.get("max_steps", MAX_STEPS)
        train = load_ts(path, max_steps=max_steps)
        if "_TRAIN" in Path(path).name and opts.get("split", "given") == "given":
            test = load_ts(ts_test_sibling(path), train.class_names, max_steps)
            data = concat(train, test)
        else:
            data = train
        maxlen = opts.get("maxlen")
        if maxlen is not None:
            data = apply_maxlen(data, maxlen)
        return data
    raise ConfigError(f"data.source={source!r}: unknown source; choose one of {', '.join(SOURCES)}")
