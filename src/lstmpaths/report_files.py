"""Writing a robustness report: `report.md`, the CSV tables and the figures, from an `Analysis`
(no MLflow here: `report.py` fetches the runs and logs the folder)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from lstmpaths.analysis import Analysis, pair_table
from lstmpaths.stability import ROBUST_LOW


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


def _named_rows(result: Analysis, pairs: list, class_names: list[str]) -> list[dict]:
    from lstmpaths.stability import classify, wilson_interval

    index = {n: i for i, n in enumerate(class_names)}
    rows = []
    for a, b in pairs:
        row: dict = {"pair": f"{a}/{b}"}
        for group in ("dae", "settings", "lstm", "lstm_100d"):
            for relation in ("related", "nearest"):
                frequencies = result.of(group, relation)
                if frequencies is None or (group == "settings" and relation == "nearest"):
                    continue
                c, n = frequencies
                k = int(c[index[a], index[b]])
                lo, hi = wilson_interval(k, n)
                row[f"{group}_{relation}"] = f"{k}/{n} ({lo:.2f}–{hi:.2f}) {classify(k, n)}"
        row["related_in_100d"] = bool(result.high_related[index[a], index[b]])
        rows.append(row)
    return rows


CONSENSUS_TEXT = (
    "Per setting, on the main classifier: every sign's end point (the mean last-step code of "
    "its training recordings) in each DAE seed, the seeds aligned by generalised Procrustes, "
    "drawn at their mean with their 1-sd ellipse over the seeds. Small ellipses: "
    "the sign sits in the same place whatever the seed."
)


def consensus_figures(result: Analysis, runs, rec, highlight: list[str], out: Path) -> list[Path]:
    """One consensus figure per setting with at least 3 DAE seeds on the main classifier."""
    import re

    from lstmpaths import figures as fig
    from lstmpaths import stability as st

    train, n_signs = rec.train, len(rec.class_names)
    files = []
    for setting in sorted({r.setting for r in runs}):
        members = [
            r for r in runs if r.setting == setting and r.classifier_id == result.main_classifier
        ]
        if len(members) < 3:
            continue
        ends = [
            st.sign_means(r.codes[train, -1, :2].astype(np.float64), rec.labels[train], n_signs)
            for r in members
        ]
        slug = re.sub(r"[^A-Za-z0-9.]+", "_", setting).strip("_")
        files.append(
            fig.consensus_figure(
                st.generalized_procrustes(ends),
                rec.class_names,
                highlight,
                out / f"consensus_{slug}.png",
                f"Sign end points over {len(members)} DAE seeds, {setting}: mean and 1-sd ellipse",
            )
        )
    return files


def _md_table(rows: list[dict], columns: list[str] | None = None) -> str:
    if not rows:
        return "_none_\n"
    columns = columns or list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = []
        for c in columns:
            v = row.get(c, "")
            small = isinstance(v, float) and 0 < abs(v) < 0.001  # p-values
            cells.append(f"{v:.1e}" if small else f"{v:.3f}" if isinstance(v, float) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_report(
    result: Analysis,
    runs: list,
    rec,
    out: Path,
    title: str,
    groups: list[list[str]],
) -> list[Path]:
    """report.md + CSVs + figures into `out` (which exists and is empty)."""
    from lstmpaths import figures as fig

    names = rec.class_names
    files: list[Path] = []
    settings = [_flat_setting(r) for r in result.settings]
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
    k = result.options.k
    dae_pairs = pair_table(result.of("dae"), names, k)
    lstm_pairs = pair_table(result.of("lstm"), names, k)
    index = {n: i for i, n in enumerate(names)}
    for row in dae_pairs:
        i, j = index[row["a"]], index[row["b"]]
        row["related_in_100d"] = bool(result.high_related[i, j])
        for method, check in result.cross_check.items():
            row[f"near_in_{method}"] = bool(check["related"][i, j])
        # shown by every DAE seed but by no other projection and not in the activations
        row["only_dae"] = row["class"] == "robust" and not (
            row["related_in_100d"] or any(row[f"near_in_{m}"] for m in result.cross_check)
        )
    files.append(_write_csv(out / "pairs_across_dae_seeds.csv", dae_pairs))
    if lstm_pairs:
        files.append(_write_csv(out / "pairs_across_lstm_seeds.csv", lstm_pairs))
    per_setting = []
    for setting, frequencies in result.per_setting.items():
        per_setting += [{"setting": setting, **row} for row in pair_table(frequencies, names, k)]
    files.append(_write_csv(out / "pairs_per_setting.csv", per_setting))
    named = _named_rows(result, named_pairs(groups, names), names)
    files.append(_write_csv(out / "named_pairs.csv", named))

    # figures
    c, n = result.of("dae")
    files.append(
        fig.pair_frequency_heatmap(
            c / n,
            names,
            out / "pair_frequency.png",
            f"Share of {n} DAE seeds in which two signs are related "
            f"({result.options.k} nearest), {result.primary}",
        )
    )
    dae_ids = result.groups["dae"]
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
            f"{by_id[dae_ids[0]].seed} ({result.primary})",
        )
    )
    consensus = consensus_figures(result, runs, rec, highlight, out)
    files += consensus
    if len(result.classifiers) > 1:
        files.append(
            fig.cka_figure(
                result.cka,
                [model_label(result.models[c], result.network) for c in result.classifiers],
                out / "cka_lstm_seeds.png",
                result.network,
            )
        )
        files.append(
            _write_csv(
                out / "cka.csv",
                [
                    {
                        "classifier_run_id": a,
                        "model": result.models[a],
                        **{
                            result.models[b].replace(" ", "_"): float(v)
                            for b, v in zip(result.classifiers, row, strict=True)
                        },
                    }
                    for a, row in zip(result.classifiers, result.cka, strict=True)
                ],
            )
        )  # fmt: skip

    if len(result.classifiers) > 1:
        files.append(_write_csv(out / "similarity.csv", similarity_rows(result)))
    md = _markdown(result, runs, settings, dae_pairs, lstm_pairs, named, title)
    if consensus:
        md += "\n## Consensus across DAE seeds\n\n" + CONSENSUS_TEXT + "\n\n"
        md += "\n".join(f"![{p.stem}]({p.name})" for p in consensus) + "\n"
    (out / "report.md").write_text(md)
    files.append(out / "report.md")
    return files


PAIR_COLUMNS = [
    "a",
    "b",
    "count",
    "runs",
    "frequency",
    "low",
    "high",
    "p_chance",
    "above_chance",
    "related_in_100d",
]
CROSS_CHECK_NAMES = {"pca": "PCA", "umap": "UMAP"}


def _markdown(result, runs, settings, dae_pairs, lstm_pairs, named, title) -> str:
    """report.md: one section after the other (each written by its own function)."""
    lines = _intro(result, runs, settings, title)
    lines += _classifiers_section(result)
    lines += _settings_section(result)
    lines += _cross_check_section(result, dae_pairs)
    lines += _named_section(result, named)
    lines += _dae_section(result, dae_pairs)
    if len(result.classifiers) > 1:
        lines += _lstm_section(result, lstm_pairs)
    if result.truth is not None:
        lines += _truth_section(result.truth, result.options.k)
    return "\n".join(lines)


def _intro(result, runs, settings, title) -> list[str]:
    opts = result.options
    dist = "mean path (20 time-normalised points)" if opts.kind == "path" else "last-step centroid"
    return [
        f"# Robustness report: {title}",
        "",
        f"{len(runs)} FINISHED paths runs, {len(result.classifiers)} classifier(s), "
        f"{len(settings)} autoencoder setting(s), {result.n_signs} signs.",
        "",
        f"**Recommendation:** {result.recommendation}.",
        "",
        "Definitions: sign distance = " + dist + "; two signs are *related* when either is among "
        f"the other's {opts.k} nearest signs, *nearest* when either is the other's nearest sign, "
        "*partners* when each is the other's nearest sign. "
        "Verdicts rest on the 95% Wilson interval of the share of runs that relate a pair: "
        f"*robust* when the interval lies at or above {ROBUST_LOW} (with 10 runs: 10 of 10; 9 "
        "of 10 gives [0.60, 0.98]), *fragile* when it lies below, *undecided* when it straddles "
        f"{ROBUST_LOW} (too few runs to tell; 3 of 3 gives [0.44, 1.00]), *absent* in no run.",
        "",
    ]


SETTING_COLUMNS = {
    "recon MSE": ("recon_mse_val", 4),
    "trust": ("trustworthiness", 3),
    "PCA trust": ("pca_trustworthiness", 3),
    "continuity": ("continuity", 3),
    "PCA cont.": ("pca_continuity", 3),
    "hand sep.": ("hand_separation", 3),
    "Procrustes": ("procrustes", 3),
    "shape dist.": ("shape_distance", 3),
    "10-NN Jaccard": ("point_jaccard10", 3),
    "dist. Spearman": ("distance_spearman", 3),
    "k-sign Jaccard": ("sign_jaccard", 3),
    "prec. vs 100-D": ("precision_vs_100d", 3),
    "recall vs 100-D": ("recall_vs_100d", 3),
}


def _cross_check_section(result: Analysis, dae_pairs: list[dict]) -> list[str]:
    """The DAE's picture against other projections of the same activations."""
    if not result.cross_check:
        return []
    primary = next(r for r in result.settings if r["setting"] == result.primary)
    rows = [
        {"projection": f"DAE ({result.primary}, mean of {primary['runs']} runs)",
         "trustworthiness": primary["trustworthiness"][0],
         "precision vs 100-D": primary["precision_vs_100d"][0],
         "recall vs 100-D": primary["recall_vs_100d"][0]}
    ] + [
        {"projection": CROSS_CHECK_NAMES.get(m, m), "trustworthiness": c["trustworthiness"],
         "precision vs 100-D": c["precision_vs_100d"], "recall vs 100-D": c["recall_vs_100d"]}
        for m, c in result.cross_check.items()
    ]  # fmt: skip
    robust = [p for p in dae_pairs if p["class"] == "robust"]
    only = [f"{p['a']}/{p['b']}" for p in robust if p["only_dae"]]
    names = ", ".join(CROSS_CHECK_NAMES.get(m, m) for m in result.cross_check)
    return [
        "## The same activations in other projections",
        "",
        f"{names} of the main classifier's per-step activations (fitted on up to 8,000 of the "
        "training recordings' resampled steps, seeded), read exactly as the DAE's codes. "
        f"Agreement with the {result.width}-D sign neighbourhoods: the share of a projection's "
        f"related pairs that are related in {result.width}-D (precision) and of those it shows "
        "(recall). Pair tables: `near_in_pca`, `near_in_umap`; `only_dae`: robust across DAE "
        f"seeds but near in no other projection and not in {result.width}-D.",
        "",
        _md_table(rows),
        f"{len(only)} of the {len(robust)} robust pairs are shown only by the DAE"
        + (f": {', '.join(only[:20])}." if only else "."),
        "",
    ]


def _classifiers_section(result: Analysis) -> list[str]:
    """The classifiers' test accuracy as a distribution over retrains, against the 1-NN
    baseline measured in the same runs, and the machines that computed them."""
    facts = [result.classifier_facts[c] for c in result.classifiers if c in result.classifier_facts]
    accuracies = [f["test_acc"] for f in facts if np.isfinite(f["test_acc"])]
    if not accuracies:
        return []
    baselines = [f["baseline_1nn_test_acc"] for f in facts]
    machines = sorted({f["machine"] for f in facts})
    lines = [
        f"## The classifiers ({len(facts)})",
        "",
        f"Test accuracy {100 * np.mean(accuracies):.2f}% ± {100 * np.std(accuracies):.2f}% "
        f"(mean ± sd over {len(accuracies)} classifier(s); min {100 * min(accuracies):.2f}%, "
        f"max {100 * max(accuracies):.2f}%); measured on {'; '.join(machines)}.",
    ]
    if all(np.isfinite(baselines)):
        weaker = sum(a < b for a, b in zip(accuracies, baselines, strict=False))
        lines.append(
            f"A 1-nearest-neighbour baseline (series resampled to 32 steps, z-normalised) on "
            f"the same test recordings: {100 * np.mean(baselines):.2f}%"
            + (
                f"; {weaker} classifier(s) do worse than it, and their paths show little."
                if weaker
                else "."
            )
        )
    rows = [
        {"classifier": model_label(result.models[c], result.network),
         "test acc.": result.classifier_facts[c]["test_acc"],
         "1-NN baseline": result.classifier_facts[c]["baseline_1nn_test_acc"],
         "epochs": int(result.classifier_facts[c]["epochs"])
         if np.isfinite(result.classifier_facts[c]["epochs"]) else ""}
        for c in result.classifiers
        if c in result.classifier_facts
    ]  # fmt: skip
    return [*lines, "", _md_table(rows), ""]


def _settings_section(result: Analysis) -> list[str]:
    rows = [
        {"setting": r["setting"], "runs": r["runs"]}
        | {label: _fmt(r[key], digits) for label, (key, digits) in SETTING_COLUMNS.items()}
        for r in result.settings
    ]
    return [
        "## Settings: quality (mean ± sd over runs) and stability across DAE seeds",
        "",
        "Stability compares every two DAE seeds of the same classifier: Procrustes disparity of "
        "the last-step points (0 = same shape), their angular Procrustes shape distance (Williams "
        "et al. 2021; radians, 0 = same shape, a metric), Jaccard of their 10 nearest points, Spearman "
        "correlation of the sign-distance matrices, Jaccard of each sign's k nearest signs. "
        f"Precision/recall vs 100-D: the 2-D relationships against the same relationships in the "
        f"{result.network}'s own {result.width}-D activation space.",
        "",
        _md_table(rows),
        "",
    ]


def model_label(model: str, network: str) -> str:
    """'seed 8' (a classifier lstmpaths trained) -> 'LSTM seed 8'; a file's name as it is."""
    return f"{network} {model}" if model.startswith("seed ") else model


def _named_section(result, named) -> list[str]:
    return [
        "## The named pairs",
        "",
        f"`dae_*`: across {len(result.groups['dae'])} DAE seeds of {result.primary} on one "
        f"classifier ({result.models[result.main_classifier]}). "
        "`settings_*`: across every setting and seed on that classifier. `lstm_*`: every run of "
        f"{result.primary} over the retrained classifiers (each a new {result.network} and a new "
        f"autoencoder); `lstm_100d_*`: the same pair in the retrained {result.network}s' own "
        f"{result.width}-D activations (no projection). `related_in_100d`: related in the main "
        "classifier's activations.",
        "",
        _md_table(named),
        "",
    ]


def _chance_text(chance: dict[str, float], k: int) -> str:
    """The group's robust pairs against what chance alone gives (`analysis.chance_level`)."""
    return (
        f"Chance: with random {k} nearest signs, a given pair is related in a run with "
        f"probability {chance['rate']:.1%} (analytic, each sign's neighbours drawn independently); "
        f"over {chance['runs']:.0f} runs, chance alone would make "
        f"{chance['robust_by_chance']:.1f} of the {chance['pairs']:.0f} pairs robust, against "
        f"{chance['robust']:.0f} found. {chance['above_chance']:.0f} pairs are related more often "
        "than chance (one-sided binomial test, Benjamini–Hochberg at 5% false discoveries over "
        "every pair; column `above_chance`)."
    )


def _dae_section(result: Analysis, dae_pairs) -> list[str]:
    robust = [p for p in dae_pairs if p["class"] == "robust"]
    fragile = [p for p in dae_pairs if p["class"] == "fragile"]
    undecided = [p for p in dae_pairs if p["class"] == "undecided"]
    artefacts = [p for p in robust if not p["related_in_100d"]]
    return [
        f"## Across DAE seeds: {len(robust)} robust, {len(undecided)} undecided and "
        f"{len(fragile)} fragile pairs",
        "",
        _chance_text(result.chance["dae"], result.options.k),
        "",
        f"Of the robust pairs, {len(artefacts)} are not related in the {result.network}'s "
        f"{result.width}-D space: "
        "stable, but made by the projection.",
        "",
        "Top robust pairs:",
        "",
        _md_table(robust[:15], PAIR_COLUMNS),
        "",
        "Top undecided pairs (too few seeds to call them robust or fragile):",
        "",
        _md_table(undecided[:15], PAIR_COLUMNS),
        "",
        "Top fragile pairs (related in some seeds only):",
        "",
        _md_table(sorted(fragile, key=lambda p: -p["frequency"])[:15], PAIR_COLUMNS),
        "",
        "![pair frequencies](pair_frequency.png)",
        "",
        "![paths across seeds](paths_across_seeds.png)",
        "",
    ]


SIMILARITY_TEXT = {
    "cka": "linear CKA (Kornblith et al. 2019)",
    "svcca": "SVCCA (Raghu et al. 2017; 99% of the variance)",
    "pwcca": "PWCCA (Morcos et al. 2018)",
    "shape_distance": "angular Procrustes shape distance (Williams et al. 2021; radians, 0 = same)",
}


def similarity_rows(result: Analysis) -> list[dict]:
    """One row per ordered pair of classifiers: every SIMILARITY measure (PWCCA weighted by a)."""
    return [
        {"model_a": result.models[a], "model_b": result.models[b], "classifier_run_id_a": a,
         "classifier_run_id_b": b,
         **{name: float(m[i, j]) for name, m in result.similarity.items()}}
        for i, a in enumerate(result.classifiers)
        for j, b in enumerate(result.classifiers)
        if i != j
    ]  # fmt: skip


def _similarity_lines(result: Analysis) -> list[str]:
    """Each measure of how alike the classifiers' activations are: mean (min, max) over pairs."""
    lines = []
    n = len(result.classifiers)
    off_diagonal = ~np.eye(n, dtype=bool)
    for name, text in SIMILARITY_TEXT.items():
        values = result.similarity[name][off_diagonal]
        lines.append(
            f"- {text}: mean {np.mean(values):.3f} (min {np.min(values):.3f}, "
            f"max {np.max(values):.3f})"
        )
    return lines


def _lstm_section(result, lstm_pairs) -> list[str]:
    ls, hs = result.lstm_stability, result.high_stability
    robust = [p for p in lstm_pairs if p["class"] == "robust"]
    chance = (
        [_chance_text(result.chance["lstm"], result.options.k), ""]
        if "lstm" in result.chance
        else []
    )
    return [
        f"## Across {result.network} retrains ({len(result.classifiers)} classifiers)",
        "",
        "How alike the classifiers' activations are, on the same inputs (every pair of "
        "classifiers; `similarity.csv`):",
        "",
        *_similarity_lines(result),
        "",
        *chance,
        f"2-D pictures across {result.network}s (same DAE seed, {result.lstm_pairs} run pairs): "
        f"sign-distance Spearman {_fmt(ls['distance_spearman'])}, k-sign Jaccard "
        f"{_fmt(ls['sign_jaccard'])}, Procrustes {_fmt(ls['procrustes'])}. In the "
        f"{result.width}-D "
        f"activations themselves: Spearman {_fmt(hs['distance_spearman'])}, k-sign Jaccard "
        f"{_fmt(hs['sign_jaccard'])}.",
        "",
        f"{len(robust)} pairs are robust across {result.network} retrains. Top:",
        "",
        _md_table(robust[:15], [c for c in PAIR_COLUMNS if c != "related_in_100d"]),
        "",
        "![CKA](cka_lstm_seeds.png)",
        "",
    ]


def _truth_section(t: dict, k: int) -> list[str]:
    lines = [
        "## Against the planted truth (synthetic data)",
        "",
        f"{t['planted']} planted pairs (extension + near twins), {t['controls']} control pairs. "
        "The truth says each planted sign's nearest sign is its partner. The headline, "
        "*own nearest*, pairs every planted sign with the sign that is robustly its own "
        "nearest over the DAE seeds (the interval rule above): precision = share of those pairs "
        "that are planted, recall = share of the planted pairs found (an undecided planted pair "
        "counts as a miss). The symmetric relations below are "
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
        f"- control pairs robust (related, k={k}): {', '.join(t['robust_controls']) or 'none'}",
        f"- planted pairs not found (own nearest): {', '.join(t['missed']) or 'none'} "
        f"({t['own_nearest']['undecided']} of them undecided: too few seeds to tell)",
        "- planted signs robustly nearest to a sign not their partner: "
        f"{', '.join(t['unplanted']) or 'none'}",
    ]
    if "mislabelled_flagged" in t:
        lines.append(
            f"- hand-usage heuristic flags {', '.join(t['mislabelled_flagged']) or 'nothing'} "
            f"(planted mislabelled: {', '.join(t['mislabelled_truth']) or 'none'})"
        )
    return [*lines, ""]
