"""`lstmpaths-report`: which sign relationships survive retraining, from a sweep in MLflow.

Reads the FINISHED paths runs of an experiment (optionally one sweep: `--parent RUN_ID`), their
codes (`paths.npz`) and their classifiers' activations, runs `analysis.analyse`, and writes a
folder with `report.md`, CSV tables and figures. The same folder is logged as a `report` run in
the experiment. The folder is written under a temporary name and renamed when complete, so a
failed report never leaves a half-written one behind.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lstmpaths.errors import ConfigError, LstmpathsError

log = logging.getLogger("lstmpaths")
# Every report folder holds this file: the only kind of non-empty folder a report replaces.
MARKER = ".lstmpaths-report"
AE_VARYING = ("bottleneck", "widths", "lr", "batch_size", "window", "max_epochs", "patience")


def fetch_runs(uri: str, experiment: str, parent: str | None) -> tuple[str, list]:
    """The experiment id and its FINISHED, complete paths runs (of one sweep when parent)."""
    from lstmpaths.tracking import COMPLETE_TAG, STAGE_TAG, client

    mlflow_client = client(uri)
    exp = mlflow_client.get_experiment_by_name(experiment)
    if exp is None:
        names = sorted(e.name for e in mlflow_client.search_experiments())
        raise ConfigError(
            f"--experiment {experiment}: no such experiment in {uri}; there are: "
            f"{', '.join(names) or 'none'}"
        )
    query = f"tags.`{STAGE_TAG}` = 'paths'"
    if parent:
        check_run_id(parent)
        if mlflow_client.search_runs([exp.experiment_id], f"attributes.run_id = '{parent}'") == []:
            raise ConfigError(f"--parent {parent}: no such run in experiment {experiment}")
        query += f" and tags.`mlflow.parentRunId` = '{parent}'"
    every = mlflow_client.search_runs([exp.experiment_id], query, max_results=50000)
    done = one_run_per_key(
        [r for r in every if r.info.status == "FINISHED" and r.data.tags.get(COMPLETE_TAG) == "1"]
    )
    if not done:
        statuses = sorted({r.info.status for r in every})
        raise ConfigError(
            f"--experiment {experiment}{f' --parent {parent}' if parent else ''}: no FINISHED "
            f"paths runs to report on ({len(every)} paths runs"
            f"{', statuses ' + ', '.join(statuses) if statuses else ''}); run a sweep first, "
            "e.g. lstmpaths-run -m +sweeps=smoke"
        )
    data_settings = {
        json.dumps(
            {k: v for k, v in r.data.params.items() if k.startswith("data.")}, sort_keys=True
        )
        for r in done
    }
    if len(data_settings) > 1:
        raise ConfigError(
            f"--experiment {experiment}: the runs were made on {len(data_settings)} different data "
            "settings (data.* params differ), so their relationships are not comparable; "
            "choose one sweep with --parent RUN_ID"
        )
    bottlenecks = {r.data.params.get("autoencoder.bottleneck") for r in done}
    if len(bottlenecks) > 1:
        raise ConfigError(
            f"--experiment {experiment}: runs with bottleneck {sorted(bottlenecks)} are mixed; "
            "choose one sweep with --parent RUN_ID"
        )
    return exp.experiment_id, done


def check_run_id(run_id: str) -> None:
    """A run id is letters, digits, '-' or '_' (MLflow's are 32 hex digits): anything else would
    change the meaning of the MLflow filter it goes into."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", run_id):
        raise ConfigError(f"--parent {run_id!r}: not a run id (letters and digits only)")


def one_run_per_key(runs: list) -> list:
    """The newest run of each configuration key: a configuration that two sweeps on one store
    both ran must count once, not as an extra seed."""
    from lstmpaths.tracking import KEY_TAG

    newest: dict[str, object] = {}
    for run in sorted(runs, key=lambda r: r.info.start_time):
        newest[run.data.tags.get(KEY_TAG) or run.info.run_id] = run
    return list(newest.values())


def safe_folder_name(name: str) -> str:
    """An experiment or run name as one harmless folder name (no '/', '..' or leading dot)."""
    cleaned = re.sub(r"\.{2,}", "_", name)  # no '..' anywhere, even between other characters
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", cleaned)
    cleaned = re.sub(r"_+", "_", cleaned).strip("._")
    return cleaned or "report"


def check_out_folder(out: Path) -> None:
    """Refuse a report folder whose contents a report would destroy: a file, the working folder
    or one above it, or a non-empty folder that is not an earlier lstmpaths report."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is a file, not a folder")
    cwd = Path.cwd().resolve()
    if out == cwd or out in cwd.parents:
        raise ConfigError(f"--out {out}: is the working folder or holds it; name a new folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise ConfigError(
            f"--out {out}: the folder holds files that are not an lstmpaths report (no {MARKER} "
            "in it); name an empty or new folder"
        )


def load_runs(uri: str, runs: list, cache: Path):
    """Download every run's paths and its classifier's activations (each file once)."""
    from mlflow.artifacts import download_artifacts

    from lstmpaths.analysis import PathsRun, Recordings

    varying = [
        key
        for key in AE_VARYING
        if len({r.data.params.get(f"autoencoder.{key}") for r in runs}) > 1
    ]
    loaded, recordings, reference_ids = [], None, None
    activations: dict[str, np.ndarray] = {}
    for n, r in enumerate(sorted(runs, key=lambda r: r.info.start_time), 1):
        folder = cache / r.info.run_id
        path = download_artifacts(
            run_id=r.info.run_id, artifact_path="paths.npz", dst_path=str(folder), tracking_uri=uri
        )
        with np.load(path) as z:
            ids = [str(s) for s in z["ids"]]
            if reference_ids is None:
                reference_ids = ids
                recordings = Recordings(
                    labels=z["labels"],
                    lengths=z["lengths"],
                    train=np.flatnonzero(z["part"] == "train"),
                    class_names=[str(s) for s in z["class_names"]],
                )
            elif ids != reference_ids:
                raise ConfigError(
                    f"run {r.info.run_id}: its recordings differ from the other runs' "
                    "(another data split); choose one sweep with --parent RUN_ID"
                )
            codes = z["codes"]
        classifier = r.data.tags["lstmpaths.classifier_run_id"]
        if classifier not in activations:
            apath = download_artifacts(
                run_id=classifier,
                artifact_path="activations.npz",
                dst_path=str(cache / classifier),
                tracking_uri=uri,
            )
            with np.load(apath) as z:
                activations[classifier] = z["activations"].astype(np.float32)
        params = r.data.params
        loaded.append(
            PathsRun(
                run_id=r.info.run_id,
                classifier_id=classifier,
                activation=params["autoencoder.activation"],
                noise=float(params["autoencoder.noise"]),
                seed=int(params["autoencoder.seed"]),
                codes=codes,
                metrics=dict(r.data.metrics),
                extra=", ".join(f"{k} {params.get(f'autoencoder.{k}')}" for k in varying),
                classifier_seed=params.get("classifier.seed", "?"),
            )
        )
        if n % 10 == 0 or n == len(runs):
            print(f"  read {n}/{len(runs)} runs", flush=True)
    return loaded, recordings, activations


def hand_usage(uri: str, run_id: str, cache: Path, n: int) -> np.ndarray | None:
    """Per-recording one-handed flags from a paths run's hand_usage.csv (None if absent)."""
    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException

    try:
        path = download_artifacts(
            run_id=run_id, artifact_path="hand_usage.csv", dst_path=str(cache / "hands"),
            tracking_uri=uri,
        )  # fmt: skip
    except (MlflowException, OSError):
        return None
    with open(path, newline="") as fh:
        flags = np.array([int(row["one_handed"]) for row in csv.DictReader(fh)])
    return flags if len(flags) == n else None


def planted_truth(uri: str, classifier_run_id: str, cache: Path) -> dict | None:
    """The synthetic data's planted truth, regenerated from the classifier run's config."""
    from mlflow.artifacts import download_artifacts
    from omegaconf import OmegaConf

    from lstmpaths.prepare import prepare_data
    from lstmpaths.tracking import client

    path = download_artifacts(
        run_id=classifier_run_id, artifact_path="config.yaml", dst_path=str(cache / "config"),
        tracking_uri=uri,
    )  # fmt: skip
    cfg = OmegaConf.load(path)
    if cfg.data.source != "synthetic":
        return None
    data = prepare_data(cfg.data).data
    logged = client(uri).get_run(classifier_run_id).data.tags.get("lstmpaths.data_fingerprint")
    if logged != data.fingerprint:
        print(
            "report: the synthetic generator has changed since these runs were made "
            f"(fingerprint {data.fingerprint} vs {logged}); no ground-truth scores"
        )
        return None
    return data.truth


# --- writing -----------------------------------------------------------------------------------


def _fmt(pair: tuple[float, float], digits: int = 3) -> str:
    mean, sd = pair
    return "–" if not np.isfinite(mean) else f"{mean:.{digits}f} ± {sd:.{digits}f}"


def _write_csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="") as fh:
        if rows:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return path


def _flat_setting(row: dict) -> dict:
    out = {}
    for key, value in row.items():
        if isinstance(value, tuple):
            out[f"{key}_mean"], out[f"{key}_sd"] = value
        else:
            out[key] = value
    return out


def named_pairs(groups: list[list[str]], class_names: list[str]) -> list[tuple[str, str]]:
    """Every pair inside each named group, in order, once."""
    seen, out = set(), []
    for group in groups:
        for i, a in enumerate(group):
            for b in group[i + 1 :]:
                key = tuple(sorted((a, b)))
                if a in class_names and b in class_names and key not in seen:
                    seen.add(key)
                    out.append((a, b))
    return out


def _named_rows(result: dict, pairs: list, class_names: list[str]) -> list[dict]:
    from lstmpaths.stability import classify, wilson_interval

    index = {n: i for i, n in enumerate(class_names)}
    rows = []
    for a, b in pairs:
        row: dict = {"pair": f"{a}/{b}"}
        for group in ("dae", "settings", "lstm", "lstm_100d"):
            for relation in ("related", "nearest"):
                key = (group, relation)
                if key not in result["counts"] or (group == "settings" and relation == "nearest"):
                    continue
                c, n = result["counts"][key]
                k = int(c[index[a], index[b]])
                lo, hi = wilson_interval(k, n)
                row[f"{group}_{relation}"] = f"{k}/{n} ({lo:.2f}–{hi:.2f}) {classify(k / n)}"
        row["related_in_100d"] = bool(result["high_related"][index[a], index[b]])
        rows.append(row)
    return rows


def _md_table(rows: list[dict], columns: list[str] | None = None) -> str:
    if not rows:
        return "_none_\n"
    columns = columns or list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = []
        for c in columns:
            v = row.get(c, "")
            cells.append(f"{v:.3f}" if isinstance(v, float) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_report(
    result: dict,
    runs: list,
    rec,
    out: Path,
    title: str,
    groups: list[list[str]],
) -> list[Path]:
    """report.md + CSVs + figures into `out` (which exists and is empty)."""
    from lstmpaths import figures as fig
    from lstmpaths.analysis import pair_table

    names = rec.class_names
    files: list[Path] = []
    settings = [_flat_setting(r) for r in result["settings"]]
    files.append(_write_csv(out / "settings.csv", settings))
    files.append(
        _write_csv(
            out / "runs.csv",
            [
                {
                    "run_id": r.run_id,
                    "classifier_run_id": r.classifier_id,
                    "setting": r.setting,
                    "seed": r.seed,
                    **{m: r.metrics.get(m, float("nan")) for m in ("trustworthiness", "continuity", "recon_mse_val", "hand_separation")},
                }
                for r in runs
            ],
        )
    )  # fmt: skip
    dae_pairs = pair_table(result["counts"], ("dae", "related"), names)
    lstm_pairs = pair_table(result["counts"], ("lstm", "related"), names)
    index = {n: i for i, n in enumerate(names)}
    for row in dae_pairs:
        row["related_in_100d"] = bool(result["high_related"][index[row["a"]], index[row["b"]]])
    files.append(_write_csv(out / "pairs_across_dae_seeds.csv", dae_pairs))
    if lstm_pairs:
        files.append(_write_csv(out / "pairs_across_lstm_seeds.csv", lstm_pairs))
    per_setting = []
    for key in result["counts"]:
        if key[0].startswith("setting:"):
            for row in pair_table(result["counts"], key, names):
                per_setting.append({"setting": key[0][8:], **row})
    files.append(_write_csv(out / "pairs_per_setting.csv", per_setting))
    named = _named_rows(result, named_pairs(groups, names), names)
    files.append(_write_csv(out / "named_pairs.csv", named))

    # figures
    c, n = result["counts"][("dae", "related")]
    files.append(
        fig.pair_frequency_heatmap(
            c / n,
            names,
            out / "pair_frequency.png",
            f"Share of {n} DAE seeds in which two signs are related "
            f"({result['options'].k} nearest), {result['primary']}",
        )
    )
    dae_ids = result["groups"]["dae"]
    by_id = {r.run_id: r for r in runs}
    highlight = sorted({s for pair in named_pairs(groups, names) for s in pair})
    files.append(
        fig.aligned_small_multiples(
            [by_id[i].codes for i in dae_ids[:6]],
            [f"DAE seed {by_id[i].seed}" for i in dae_ids[:6]],
            rec,
            highlight,
            out / "paths_across_seeds.png",
            f"Sign mean paths (log1p) across DAE seeds, aligned by Procrustes to seed "
            f"{by_id[dae_ids[0]].seed} ({result['primary']})",
        )
    )
    if len(result["classifiers"]) > 1:
        files.append(
            fig.cka_figure(
                result["cka"],
                [f"LSTM seed {result['classifier_seeds'][c]}" for c in result["classifiers"]],
                out / "cka_lstm_seeds.png",
            )
        )
        files.append(
            _write_csv(
                out / "cka.csv",
                [
                    {
                        "classifier_run_id": a,
                        "classifier_seed": result["classifier_seeds"][a],
                        **{
                            f"seed_{result['classifier_seeds'][b]}": float(v)
                            for b, v in zip(result["classifiers"], row, strict=True)
                        },
                    }
                    for a, row in zip(result["classifiers"], result["cka"], strict=True)
                ],
            )
        )  # fmt: skip

    md = _markdown(result, runs, settings, dae_pairs, lstm_pairs, named, title)
    (out / "report.md").write_text(md)
    files.append(out / "report.md")
    return files


def _markdown(result, runs, settings, dae_pairs, lstm_pairs, named, title) -> str:
    opts = result["options"]
    dist = "mean path (20 time-normalised points)" if opts.kind == "path" else "last-step centroid"
    n_dae = len(result["groups"]["dae"])
    lines = [
        f"# Robustness report: {title}",
        "",
        f"{len(runs)} FINISHED paths runs, {len(result['classifiers'])} classifier(s), "
        f"{len(settings)} autoencoder setting(s), {result['n_signs']} signs.",
        "",
        f"**Recommendation:** {result['recommendation']}.",
        "",
        "Definitions: sign distance = " + dist + "; two signs are *related* when either is among "
        f"the other's {opts.k} nearest signs, *nearest* when either is the other's nearest sign, "
        "*partners* when each is the other's nearest sign. "
        "A pair is *robust* when related in ≥80% of runs, *fragile* when related in some runs "
        "but <50%. Intervals are 95% Wilson intervals.",
        "",
        "## Settings: quality (mean ± sd over runs) and stability across DAE seeds",
        "",
        "Stability compares every two DAE seeds of the same classifier: Procrustes disparity of "
        "the last-step points (0 = same shape), Jaccard of their 10 nearest points, Spearman "
        "correlation of the sign-distance matrices, Jaccard of each sign's k nearest signs. "
        "Precision/recall vs 100-D: the 2-D relationships against the same relationships in the "
        "LSTM's own activation space.",
        "",
    ]
    rows = []
    for r in result["settings"]:
        rows.append(
            {
                "setting": r["setting"],
                "runs": r["runs"],
                "recon MSE": _fmt(r["recon_mse_val"], 4),
                "trust": _fmt(r["trustworthiness"]),
                "PCA trust": _fmt(r["pca_trustworthiness"]),
                "continuity": _fmt(r["continuity"]),
                "PCA cont.": _fmt(r["pca_continuity"]),
                "hand sep.": _fmt(r["hand_separation"]),
                "Procrustes": _fmt(r["procrustes"]),
                "10-NN Jaccard": _fmt(r["point_jaccard10"]),
                "dist. Spearman": _fmt(r["distance_spearman"]),
                "k-sign Jaccard": _fmt(r["sign_jaccard"]),
                "prec. vs 100-D": _fmt(r["precision_vs_100d"]),
                "recall vs 100-D": _fmt(r["recall_vs_100d"]),
            }
        )
    lines += [_md_table(rows), ""]
    lines += [
        "## The named pairs",
        "",
        f"`dae_*`: across {n_dae} DAE seeds of {result['primary']} on one classifier (seed "
        f"{result['classifier_seeds'][result['main_classifier']]}). "
        "`settings_*`: across every setting and seed on that classifier. `lstm_*`: every run of "
        f"{result['primary']} over the retrained classifiers (each a new LSTM and a new "
        "autoencoder); `lstm_100d_*`: the same pair in the retrained LSTMs' own 100-D "
        "activations (no projection). `related_in_100d`: related in the main classifier's "
        "activations.",
        "",
        _md_table(named),
        "",
    ]
    robust = [p for p in dae_pairs if p["class"] == "robust"]
    fragile = [p for p in dae_pairs if p["class"] == "fragile"]
    artefacts = [p for p in robust if not p["related_in_100d"]]
    cols = ["a", "b", "count", "runs", "frequency", "low", "high", "related_in_100d"]
    lines += [
        f"## Across DAE seeds: {len(robust)} robust and {len(fragile)} fragile pairs",
        "",
        f"Of the robust pairs, {len(artefacts)} are not related in the LSTM's 100-D space: "
        "stable, but made by the projection.",
        "",
        "Top robust pairs:",
        "",
        _md_table(robust[:15], cols),
        "",
        "Top fragile pairs (related in some seeds only):",
        "",
        _md_table(sorted(fragile, key=lambda p: -p["frequency"])[:15], cols),
        "",
        "![pair frequencies](pair_frequency.png)",
        "",
        "![paths across seeds](paths_across_seeds.png)",
        "",
    ]
    if len(result["classifiers"]) > 1:
        ls, hs = result["lstm_stability"], result["high_stability"]
        lrobust = [p for p in lstm_pairs if p["class"] == "robust"]
        cka = result["cka"][np.triu_indices(len(result["cka"]), 1)]
        lines += [
            f"## Across LSTM retrains ({len(result['classifiers'])} classifiers)",
            "",
            f"Linear CKA between the classifiers' activations on the same inputs: mean "
            f"{np.mean(cka):.3f} (min {np.min(cka):.3f}, max {np.max(cka):.3f}).",
            "",
            f"2-D pictures across LSTM seeds (same DAE seed, {result['lstm_pairs']} run pairs): "
            f"sign-distance Spearman {_fmt(ls['distance_spearman'])}, k-sign Jaccard "
            f"{_fmt(ls['sign_jaccard'])}, Procrustes {_fmt(ls['procrustes'])}. In the 100-D "
            f"activations themselves: Spearman {_fmt(hs['distance_spearman'])}, k-sign Jaccard "
            f"{_fmt(hs['sign_jaccard'])}.",
            "",
            f"{len(lrobust)} pairs are robust across LSTM retrains. Top:",
            "",
            _md_table(lrobust[:15], cols[:-1]),
            "",
            "![CKA](cka_lstm_seeds.png)",
            "",
        ]
    if "truth" in result:
        t = result["truth"]
        lines += [
            "## Against the planted truth (synthetic data)",
            "",
            f"{t['planted']} planted pairs (extension + near twins), {t['controls']} control pairs. "
            "The truth says each planted sign's nearest sign is its partner. The headline, "
            "*own nearest*, pairs every planted sign with the sign that is its own nearest in "
            "at least 80% of the DAE seeds: precision = share of those pairs that are planted, "
            "recall = share of the planted pairs found. The symmetric relations below are "
            "scored on every pair touching a planted sign, and the control pairs; there a "
            "background sign that happens to choose a planted sign as its nearest counts "
            "against precision, although the truth says nothing about background signs. At "
            "k = 3 every planted sign has three related signs but one planted partner.",
            "",
        ]
        for relation in ("own_nearest", "nearest", "partners", "mutual", "related"):
            if relation in t:
                v = t[relation]
                lines.append(
                    f"- robust *{relation.replace('_', ' ')}* pairs: precision "
                    f"{v['precision']:.3f}, recall {v['recall']:.3f}"
                )
        lines += [
            f"- control pairs robust (related, k={opts.k}): "
            f"{', '.join(t['robust_controls']) or 'none'}",
            f"- planted pairs not found (own nearest): {', '.join(t['missed']) or 'none'}",
            "- planted signs robustly nearest to a sign not their partner: "
            f"{', '.join(t['unplanted']) or 'none'}",
        ]
        if "mislabelled_flagged" in t:
            lines.append(
                f"- hand-usage heuristic flags {', '.join(t['mislabelled_flagged']) or 'nothing'} "
                f"(planted mislabelled: {', '.join(t['mislabelled_truth']) or 'none'})"
            )
        lines.append("")
    return "\n".join(lines)


# --- the command -------------------------------------------------------------------------------


def build_report(
    uri: str,
    experiment: str,
    parent: str | None,
    out: Path,
    opts=None,
    log_run: bool = True,
) -> dict:
    """Fetch, analyse, write `out` atomically, log it as a `report` run. Returns the analysis."""
    from lstmpaths.analysis import Options, analyse
    from lstmpaths.tracking import STAGE_TAG, client, tracked_run

    started = time.perf_counter()
    opts = opts or Options()
    out = out.resolve()
    check_out_folder(out)  # before any work: a folder the report may not replace is refused now
    experiment_id, finished = fetch_runs(uri, experiment, parent)
    print(f"report: {len(finished)} FINISHED paths runs in {experiment}", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}-") as tmp:
        cache, staging = Path(tmp) / "cache", Path(tmp) / "report"
        staging.mkdir()
        runs, rec, activations = load_runs(uri, finished, cache)
        n_signs = len(rec.class_names)
        if opts.k > n_signs - 2:
            raise ConfigError(
                f"--k {opts.k}: the runs have {n_signs} signs, so k must be at most "
                f"{max(1, n_signs - 2)} (with k = {n_signs - 1} every pair is related)"
            )
        first = finished[0]
        truth = planted_truth(uri, first.data.tags["lstmpaths.classifier_run_id"], cache)
        hands = hand_usage(uri, first.info.run_id, cache, len(rec.labels))
        result = analyse(runs, rec, activations, opts, truth, hands)
        groups = _groups(uri, first, cache, truth, rec.class_names)
        title = f"experiment {experiment}" + (f", sweep {parent}" if parent else "")
        files = write_report(result, runs, rec, staging, title, groups)
        (staging / MARKER).write_text("written by lstmpaths-report; replaced by the next one\n")
        # complete: swap it in. An older report of the same name is moved into the temporary
        # folder (deleted with it) only now, and only if it carries the marker.
        check_out_folder(out)  # again: the folder may have changed while the report ran
        if out.exists():
            out.rename(Path(tmp) / "previous")
        staging.rename(out)
    files = [out / f.name for f in files]
    print(f"report: wrote {out / 'report.md'} ({time.perf_counter() - started:.0f} s)")
    if log_run:
        tags = {STAGE_TAG: "report", "lstmpaths.report_runs": str(len(runs))}
        if parent:
            tags["mlflow.parentRunId"] = parent
        with tracked_run(
            uri, experiment_id, "report", tags, {"k": str(opts.k), "distance": opts.kind}
        ) as run:
            mlflow_client = client(uri)
            for f in files:
                mlflow_client.log_artifact(run.info.run_id, str(f), "report")
            for key, value in _headline(result).items():
                mlflow_client.log_metric(run.info.run_id, key, value)
        print(f"report: logged as run {run.info.run_id}")
    return result


def _groups(
    uri: str, run, cache: Path, truth: dict | None, class_names: list[str]
) -> list[list[str]]:
    """The named sign groups: data.sign_groups of the runs' config, else the planted pairs."""
    from lstmpaths.tracking import run_config

    groups = run_config(uri, run, cache / "paths-config").get("data", {}).get("sign_groups")
    if groups:
        return [[str(s) for s in g] for g in groups]
    if truth:
        return [list(p) for p in truth.get("extension_pairs", []) + truth.get("near_twins", [])]
    return []


def _headline(result: dict) -> dict[str, float]:
    c, n = result["counts"][("dae", "related")]
    from lstmpaths.stability import robust_pairs

    out = {"robust_pairs_dae": float(len(robust_pairs(c, n))), "dae_runs": float(n)}
    if "truth" in result:
        for relation in ("nearest", "related"):
            if relation in result["truth"]:
                out[f"truth_{relation}_precision"] = result["truth"][relation]["precision"]
                out[f"truth_{relation}_recall"] = result["truth"][relation]["recall"]
    return out


def main(argv: list[str] | None = None) -> int:
    from lstmpaths.analysis import Options
    from lstmpaths.tracking import default_tracking_uri

    parser = argparse.ArgumentParser(
        prog="lstmpaths-report",
        description="Which sign relationships survive retraining: a report from a sweep's runs.",
    )
    parser.add_argument("--experiment", default="lstmpaths", help="MLflow experiment name")
    parser.add_argument("--parent", help="only the runs of this sweep (its parent run id)")
    parser.add_argument("--out", type=Path, help="report folder (default reports/<experiment>)")
    parser.add_argument("--tracking-uri", default=None, help="default: the project's mlruns/")
    parser.add_argument("--k", type=int, default=3, help="nearest signs that count as related")
    parser.add_argument("--distance", choices=["path", "last"], default="path")
    parser.add_argument("--no-log", action="store_true", help="do not log a report run")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    from lstmpaths.run import silence_library_noise

    silence_library_noise()
    uri = args.tracking_uri or default_tracking_uri()
    out = args.out or Path("reports") / safe_folder_name(
        args.experiment + (f"-{args.parent}" if args.parent else "")
    )
    try:
        if args.k < 1:
            raise ConfigError(f"--k {args.k}: must be at least 1")
        build_report(
            uri,
            args.experiment,
            args.parent,
            out,
            Options(k=args.k, kind=args.distance),
            not args.no_log,
        )
    except LstmpathsError as exc:
        if args.debug:
            raise
        print(f"lstmpaths-report: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
