"""`lstmpaths-data`: describe a data source, or download the Auslan HQ archive."""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings

from lstmpaths.download import AUSLAN_URL, download_auslan
from lstmpaths.errors import LstmpathsError
from lstmpaths.prepare import data_config
from lstmpaths.sources import SOURCES, load_source


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lstmpaths-data", description="Inspect or fetch the data lstmpaths trains on."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)

    describe = sub.add_parser("describe", help="print counts of a data source")
    describe.add_argument("source", choices=SOURCES)
    describe.add_argument(
        "--path",
        help="auslan: tctodd.tar.gz, a zip wrapping it, or the extracted folder "
        "(default: $LSTMPATHS_AUSLAN); uea: one .ts file; activations: an .npz file or a glob",
    )
    describe.add_argument(
        "--maxlen",
        type=int,
        default=None,
        help="keep sequences shorter than this (auslan and synthetic default 90; uea keeps all)",
    )
    describe.add_argument(
        "--quirk",
        choices=("drop", "merge", "keep"),
        default="drop",
        help="auslan: drop his_hers/her (94 classes), merge her into his_hers (95), keep",
    )
    describe.add_argument("--on-bad-file", choices=("error", "skip"), default="error")
    describe.add_argument("--json", action="store_true", help="one JSON object instead of text")

    download = sub.add_parser("download", help="fetch a dataset archive (atomically)")
    download.add_argument("dataset", choices=("auslan",))
    download.add_argument("--dest", required=True, help="folder to write the archive into")
    download.add_argument("--url", default=None, help=f"archive address (default {AUSLAN_URL})")
    return parser


def _describe(args: argparse.Namespace) -> None:
    # the data group's own defaults (conf/data/<source>.yaml), the command's options on top
    options = data_config(args.source, on_bad_file=args.on_bad_file, quirk=args.quirk)
    if args.source == "auslan":
        options["path"] = args.path or os.environ.get("LSTMPATHS_AUSLAN")
    elif args.source == "uea":
        options["path"] = args.path
        options["split"] = "none"
    elif args.source == "activations":
        options["path"] = args.path
    if args.maxlen is not None:
        options["maxlen"] = args.maxlen
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_source(args.source, options)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    summary = data.summary()
    if data.truth is not None:
        truth = data.truth
        summary["planted"] = {
            "one_handed": sum(h == "one" for h in truth["hands"].values()),
            "extension_pairs": len(truth["extension_pairs"]),
            "near_twins": len(truth["near_twins"]),
            "mislabelled": [m["sign"] for m in truth["mislabelled"]],
            "control_pairs": len(truth["control_pairs"]),
        }
    if args.json:
        print(json.dumps(summary))
        return
    print(
        f"{summary['source']}: {summary['n_sequences']} sequences, {summary['n_classes']} classes, "
        f"{summary['n_channels']} channels"
    )
    print(
        f"lengths: min {summary['length_min']}, median {summary['length_median']:g}, "
        f"max {summary['length_max']}; per class {summary['per_class_min']}..{summary['per_class_max']}"
    )
    if summary["sessions"]:
        print(f"sessions: {summary['sessions']}")
    print(f"dropped: {summary['dropped'] or 'none'}")
    if "planted" in summary:
        print(f"planted truth: {summary['planted']}")
    print(f"fingerprint: {summary['fingerprint']}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "describe":
            _describe(args)
        else:
            target = download_auslan(args.dest, args.url)
            print(f"saved {target}")
    except LstmpathsError as exc:
        if args.debug:
            raise
        print(f"lstmpaths-data: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
