"""The robustness analysis of a set of paths runs, on arrays (no MLflow here).

`analyse` takes the runs of a sweep (codes, labels, settings) and the activations of their
classifiers, and returns tables: per-setting quality and stability, pair robustness across DAE
seeds / LSTM seeds / per setting, 2-D vs 100-D agreement, CKA across LSTM seeds, and the
ground-truth scores when the data are synthetic. `report.py` fetches the runs and writes it out.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from lstmpaths import stability as st
from lstmpaths.metrics import subsample

QUALITY = (
    "recon_mse_val",
    "trustworthiness",
    "continuity",
    "pca_trustworthiness",
    "pca_continuity",
    "hand_separation",
)
STABILITY = (
    "procrustes",
    "shape_distance",
    "point_jaccard10",
    "distance_spearman",
    "sign_jaccard",
)
# how alike two classifiers' activations are (on the same inputs): similarities (1 = same) and
# the angular shape distance (0 = same shape, a metric)
SIMILARITY = ("cka", "svcca", "pwcca", "shape_distance")
PRIMARY_SETTING = ("linear", 0.1)
RELATIONS = (
    "related",
    "mutual",
    "nearest",
    "partners",
)  # the study's choice; the reference the pair tables use


@dataclass
class PathsRun:
    """One FINISHED paths run: its setting, classifier and codes of every recording."""

    run_id: str
    classifier_id: str
    activation: str
    noise: float
    seed: int
    codes: np.ndarray  # (N, T, k) front-padded like the activations
    metrics: dict[str, float] = field(default_factory=dict)
    extra: str = ""  # other autoencoder settings that vary within the report, as text
    model: str = "?"  # the classifier's name in the report: "seed 8", or an activation file's
    network: str = "LSTM"  # what made the activations: LSTM, GRU, or "network" (a user's own)

    @property
    def setting(self) -> str:
        base = f"{self.activation}, noise {self.noise:g}"
        return f"{base}, {self.extra}" if self.extra else base


@dataclass
class Recordings:
    """What every run shares: the recordings (same data in every run of a report)."""

    labels: np.ndarray
    lengths: np.ndarray
    train: np.ndarray  # indices of the training recordings
    class_names: list[str]
    one_handed: np.ndarray | None = None  # per recording; glove data only


@dataclass
class Options:
    k: int = 3
    kind: str = "path"  # sign distance: path (mean path) or last (last-step centroid)
    n_points: int = 20
    point_k: int = 10  # neighbours of last-step points for the point Jaccard
    cka_rows: int = 5000
    # other projections of the main classifier's activations, as a cross-check of the DAE's
    projections: tuple[str, ...] = ("pca", "umap")


def sign_geometry(codes: np.ndarray, rec: Recordings, opts: Options) -> np.ndarray:
    """Sign distance matrix of one code space (training recordings only)."""
    t = rec.train
    return st.sign_distances(
        codes[t], rec.lengths[t], rec.labels[t], len(rec.class_names), opts.kind, opts.n_points
    )


def _relations(dist: np.ndarray, k: int) -> dict[str, np.ndarray]:
    return {
        "related": st.relations(dist, k),
        "mutual": st.relations(dist, k, mutual=True),
        "nearest": st.relations(dist, 1),
        "partners": st.relations(dist, 1, mutual=True),
        # each sign's own nearest sign (directed): what the planted truth is scored on
        "own_nearest": st.relations(dist, 1, directed=True),
    }


def stability_between(a: dict, b: dict, opts: Options) -> dict[str, float]:
    """The stability measures between two runs' prepared geometry (see `_prepare`)."""
    return {
        "procrustes": st.procrustes_disparity(a["last"], b["last"]),
        "shape_distance": st.angular_shape_distance(a["last"], b["last"]),
        "point_jaccard10": st.neighbour_jaccard(a["last"], b["last"], opts.point_k),
        "distance_spearman": st.distance_spearman(a["dist"], b["dist"]),
        "sign_jaccard": st.sign_neighbour_jaccard(a["dist"], b["dist"], opts.k),
    }


def _prepare(run: PathsRun, rec: Recordings, opts: Options) -> dict:
    dist = sign_geometry(run.codes, rec, opts)
    return {"dist": dist, "last": run.codes[rec.train, -1].astype(np.float64)} | _relations(
        dist, opts.k
    )


def _mean_sd(values: list[float]) -> tuple[float, float]:
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=np.float64)
    return (float(v.mean()), float(v.std())) if len(v) else (float("nan"), float("nan"))


class Frequencies(NamedTuple):
    """How often each pair of signs holds a relation over a group of runs."""

    counts: np.ndarray  # (signs, signs): runs in which the pair holds it
    runs: int


@dataclass
class Analysis:
    """Everything the report shows. Groups of runs: `dae` (the primary setting's DAE seeds on
    one classifier), `settings` (every setting and seed on that classifier), `lstm` (the primary
    setting over the retrained classifiers), `lstm_100d` (the classifiers' own activations)."""

    options: Options
    n_signs: int
    settings: list[dict]  # one row per setting: quality and stability as (mean, sd)
    primary: str  # the study's setting, or the one with most runs
    main_classifier: str
    classifiers: list[str]
    models: dict[str, str]  # classifier run id -> its name (PathsRun.model)
    network: str  # the main classifier's kind of network (PathsRun.network)
    width: int  # units of the main classifier's activations (the "100-D" of the study)
    groups: dict[str, list[str]]  # group -> run ids
    frequencies: dict[str, dict[str, Frequencies]]  # group -> relation -> frequencies
    per_setting: dict[str, Frequencies]  # setting -> how often pairs are related
    high_related: np.ndarray  # related in the main classifier's 100-D activations
    cka: np.ndarray  # linear CKA between classifiers
    similarity: dict[str, np.ndarray]  # SIMILARITY measure -> (classifiers, classifiers)
    chance: dict[str, dict[str, float]]  # group -> chance level and counts (see `chance_level`)
    lstm_stability: dict[str, tuple[float, float]]
    lstm_pairs: int
    high_stability: dict[str, tuple[float, float]]
    recommendation: str
    geometry: dict[str, dict]
    truth: dict | None = None  # scores against the planted truth (synthetic data)
    # classifier run id -> test_acc, baseline_1nn_test_acc, epochs, machine (from its run)
    classifier_facts: dict[str, dict] = field(default_factory=dict)
    # projection (pca, umap) -> related (S, S), precision/recall vs 100-D, trustworthiness
    cross_check: dict[str, dict] = field(default_factory=dict)

    def of(self, group: str, relation: str = "related") -> Frequencies | None:
        return self.frequencies.get(group, {}).get(relation)


def setting_key(activation: str, noise: float | str) -> str:
    """A setting as an MLflow metric prefix: 'linear_noise0.1'."""
    return f"{activation}_noise{float(noise):g}"


def summarise_settings(
    values: list[tuple[str, dict[str, float]]], names: tuple[str, ...]
) -> dict[str, float]:
    """Per setting, mean and sd of each of `names` over its runs: {'<setting>/<name>_mean': ..,
    '<setting>/<name>_sd': ..} (what a sweep's parent run carries for the MLflow UI)."""
    out: dict[str, float] = {}
    for setting in sorted({s for s, _ in values}):
        for name in names:
            mean, sd = _mean_sd([m.get(name, float("nan")) for s, m in values if s == setting])
            if np.isfinite(mean):
                out[f"{setting}/{name}_mean"], out[f"{setting}/{name}_sd"] = mean, sd
    return out


def cross_check(
    activations: np.ndarray, rec: Recordings, opts: Options, high_related: np.ndarray
) -> dict[str, dict]:
    """Each of `opts.projections` on the training recordings' activations: its related sign
    pairs, their agreement with the 100-D ones, and its trustworthiness (k = 10, on up to 5,000
    of the vectors it was fitted on)."""
    from lstmpaths.crosscheck import projected_paths, sign_relations_of_paths
    from lstmpaths.metrics import trustworthiness

    t, n_signs = rec.train, len(rec.class_names)
    out = {}
    for method in opts.projections:
        paths, high, low = projected_paths(activations[t], rec.lengths[t], method, opts.n_points)
        related = sign_relations_of_paths(paths, rec.labels[t], n_signs, opts.k, opts.kind)
        precision, recall = st.precision_recall(st.pairs_of(related), st.pairs_of(high_related))
        out[method] = {
            "related": related,
            "precision_vs_100d": precision,
            "recall_vs_100d": recall,
            "trustworthiness": trustworthiness(high[:5000], low[:5000], 10),
        }
    return out


def stability_summary(result: Analysis) -> dict[str, float]:
    """Each setting's stability across DAE seeds as '<setting key>/<measure>_mean' / '_sd'."""
    out = {}
    for row in result.settings:
        for name in STABILITY:
            mean, sd = row[name]
            if np.isfinite(mean):
                out[f"{row['key']}/{name}_mean"], out[f"{row['key']}/{name}_sd"] = mean, sd
    return out


def _frequencies(rel_list: list[np.ndarray]) -> Frequencies:
    return Frequencies(st.pair_counts(rel_list), len(rel_list))


def analyse(
    runs: list[PathsRun],
    rec: Recordings,
    activations: dict[str, np.ndarray],
    opts: Options | None = None,
    truth: dict | None = None,
    hand_one: np.ndarray | None = None,
    classifiers_facts: dict[str, dict] | None = None,
) -> Analysis:
    """Everything the report shows (see the module docstring)."""
    opts = opts or Options()
    geo = {r.run_id: _prepare(r, rec, opts) for r in runs}
    settings = sorted({r.setting for r in runs})
    classifiers = sorted({r.classifier_id for r in runs})
    # the 100-D truth of each classifier: the same relationships without any projection
    high = {c: sign_geometry(activations[c], rec, opts) for c in classifiers}
    high_rel = {c: _relations(d, opts.k) for c, d in high.items()}
    setting_rows = [_setting_row(s, runs, geo, high_rel, opts) for s in settings]

    primary = _primary_setting(runs)
    models = {r.classifier_id: r.model for r in runs}
    main_classifier = max(  # the most runs of the primary setting; ties: the first model by name
        sorted(classifiers, key=models.get),
        key=lambda c: sum(r.classifier_id == c and r.setting == primary for r in runs),
    )
    groups = _groups(runs, primary, main_classifier)
    similarity = _similarity_matrices(classifiers, activations, rec, opts)
    frequencies: dict[str, dict[str, Frequencies]] = {
        name: {rel: _frequencies([geo[r.run_id][rel] for r in members]) for rel in RELATIONS}
        for name, members in groups.items()
        if members
    }
    frequencies["dae"]["own_nearest"] = _frequencies(
        [geo[r.run_id]["own_nearest"] for r in groups["dae"]]
    )
    if len(classifiers) > 1:
        frequencies["lstm_100d"] = {
            rel: _frequencies([high_rel[c][rel] for c in classifiers])
            for rel in ("related", "nearest")
        }
    lstm_pairs = [
        (a, b)
        for a, b in itertools.combinations([r for r in runs if r.setting == primary], 2)
        if a.classifier_id != b.classifier_id and a.seed == b.seed
    ]
    return Analysis(
        options=opts,
        n_signs=len(rec.class_names),
        settings=setting_rows,
        primary=primary,
        main_classifier=main_classifier,
        classifiers=classifiers,
        models=models,
        network=next(r.network for r in runs if r.classifier_id == main_classifier),
        width=int(activations[main_classifier].shape[-1]),
        groups={k: [r.run_id for r in v] for k, v in groups.items()},
        frequencies=frequencies,
        per_setting={
            s: _frequencies([geo[r.run_id]["related"] for r in runs if r.setting == s])
            for s in settings
        },
        high_related=high_rel[main_classifier]["related"],
        cka=similarity["cka"],
        similarity=similarity,
        chance={
            group: chance_level(frequencies[group]["related"], len(rec.class_names), opts.k)
            for group in ("dae", "lstm", "lstm_100d")
            if group in frequencies
        },
        lstm_stability={
            m: _mean_sd(
                [stability_between(geo[a.run_id], geo[b.run_id], opts)[m] for a, b in lstm_pairs]
            )
            for m in STABILITY
        },
        lstm_pairs=len(lstm_pairs),
        high_stability=_high_stability([high[c] for c in classifiers], opts),
        recommendation=recommend(setting_rows),
        geometry=geo,
        classifier_facts=classifiers_facts or {},
        cross_check=cross_check(
            activations[main_classifier], rec, opts, high_rel[main_classifier]["related"]
        ),
        truth=None
        if truth is None
        else score_truth(truth, rec.class_names, frequencies["dae"], hand_one, rec),
    )


def _setting_row(setting: str, runs, geo: dict, high_rel: dict, opts: Options) -> dict:
    """One setting: quality over its runs, stability over pairs of DAE seeds on one classifier,
    agreement of its relationships with the 100-D ones."""
    members = [r for r in runs if r.setting == setting]
    first = members[0]
    key = setting_key(first.activation, first.noise)
    if first.extra:
        key += "_" + "".join(c if c.isalnum() or c in "._" else "_" for c in first.extra)
    row: dict = {"setting": setting, "key": key, "runs": len(members)}
    for m in QUALITY:
        row[m] = _mean_sd([r.metrics.get(m, float("nan")) for r in members])
    pairs = [
        (a, b) for a, b in itertools.combinations(members, 2) if a.classifier_id == b.classifier_id
    ]
    values = [stability_between(geo[a.run_id], geo[b.run_id], opts) for a, b in pairs]
    for m in STABILITY:
        row[m] = _mean_sd([v[m] for v in values])
    row["seed_pairs"] = len(pairs)
    agree = [
        st.precision_recall(
            st.pairs_of(geo[r.run_id]["related"]),
            st.pairs_of(high_rel[r.classifier_id]["related"]),
        )
        for r in members
    ]
    row["precision_vs_100d"] = _mean_sd([a[0] for a in agree])
    row["recall_vs_100d"] = _mean_sd([a[1] for a in agree])
    return row


def _groups(runs: list[PathsRun], primary: str, main_classifier: str) -> dict[str, list]:
    """The groups of runs the pair frequencies are counted over (see `Analysis`)."""
    lstm_runs = [r for r in runs if r.setting == primary]
    return {
        "dae": [r for r in lstm_runs if r.classifier_id == main_classifier],
        # every setting and seed on the main classifier: how much the settings move a pair
        "settings": [r for r in runs if r.classifier_id == main_classifier],
        "lstm": lstm_runs if len({r.classifier_id for r in lstm_runs}) > 1 else [],
    }


def _similarity_matrices(
    classifiers: list[str], activations: dict[str, np.ndarray], rec: Recordings, opts: Options
) -> dict[str, np.ndarray]:
    """Every SIMILARITY measure of every two classifiers' activations on the same (recording,
    step) cells. PWCCA is weighted by the row's classifier, so its matrix is not symmetric."""
    measures = {
        "cka": st.linear_cka,
        "svcca": st.svcca,
        "pwcca": st.pwcca,
        "shape_distance": st.angular_shape_distance,
    }
    rows = _cka_rows(rec, activations[classifiers[0]].shape[1], opts)
    flat = {c: _flat(activations[c], rows) for c in classifiers}
    out = {}
    for name, measure in measures.items():
        same = 0.0 if name == "shape_distance" else 1.0
        matrix = np.full((len(classifiers), len(classifiers)), same)
        for i, a in enumerate(classifiers):
            for j, b in enumerate(classifiers):
                symmetric_done = name != "pwcca" and j < i
                if i != j:
                    matrix[i, j] = matrix[j, i] if symmetric_done else measure(flat[a], flat[b])
        out[name] = matrix
    return out


def chance_level(frequencies: Frequencies, n_signs: int, k: int) -> dict[str, float]:
    """The `related` pairs of a group against chance (`st.chance_rate`, analytic): the rate per
    run, the pairs a null would call robust, the robust pairs found, and the pairs related
    more often than chance at 5% false discovery rate (Benjamini-Hochberg over every pair)."""
    counts, runs = frequencies
    rate = st.chance_rate("related", n_signs, k)
    n_pairs = n_signs * (n_signs - 1) // 2
    return {
        "rate": rate,
        "pairs": float(n_pairs),
        "runs": float(runs),
        "robust": float(len(st.robust_pairs(counts, runs))),
        "robust_by_chance": st.robust_by_chance(n_pairs, runs, rate),
        "above_chance": float(np.triu(above_chance(frequencies, n_signs, k), 1).sum()),
    }


def above_chance(frequencies: Frequencies, n_signs: int, k: int) -> np.ndarray:
    """(signs, signs) bool: pairs related more often than chance (BH at 5% over every pair)."""
    counts, runs = frequencies
    upper = np.triu_indices(n_signs, 1)
    rate = st.chance_rate("related", n_signs, k)
    out = np.zeros((n_signs, n_signs), dtype=bool)
    out[upper] = st.benjamini_hochberg(st.p_above_chance(counts[upper], runs, rate))
    return out | out.T


def _high_stability(distances: list[np.ndarray], opts: Options) -> dict:
    """How alike the classifiers' own 100-D sign geometries are (no projection)."""
    return {
        "distance_spearman": st.pairwise_mean(distances, st.distance_spearman)[:2],
        "sign_jaccard": st.pairwise_mean(
            distances, lambda a, b: st.sign_neighbour_jaccard(a, b, opts.k)
        )[:2],
    }


def _primary_setting(runs: list[PathsRun]) -> str:
    """The study's setting (linear, noise 0.1) when present, else the one with most runs."""
    for r in runs:
        if (r.activation, round(r.noise, 6)) == PRIMARY_SETTING and not r.extra:
            return r.setting
    settings = [r.setting for r in runs]
    return max(sorted(set(settings)), key=settings.count)


def _cka_rows(rec: Recordings, t: int, opts: Options) -> np.ndarray:
    """A fixed sample of (recording, time step) cells on real (un-padded) steps."""
    cells = [(i, s) for i in range(len(rec.labels)) for s in range(t - int(rec.lengths[i]), t)]
    return np.asarray(cells)[subsample(len(cells), opts.cka_rows, seed=0)]


def _flat(acts: np.ndarray, cells: np.ndarray) -> np.ndarray:
    return np.asarray(acts[cells[:, 0], cells[:, 1]], dtype=np.float64)


def recommend(rows: list[dict]) -> str:
    """The setting with the best sum of ranks over faithfulness and stability, with its numbers."""
    usable = [r for r in rows if np.isfinite(r["trustworthiness"][0])]
    if not usable:
        return "no recommendation: no setting has trustworthiness values"
    stable = [r for r in usable if np.isfinite(r["distance_spearman"][0])]
    if not stable:
        best = max(usable, key=lambda r: r["trustworthiness"][0])
        return (
            f"most faithful: {best['setting']} (trustworthiness {best['trustworthiness'][0]:.3f}); "
            "stability needs at least two DAE seeds per setting"
        )
    criteria = ("trustworthiness", "continuity", "distance_spearman", "sign_jaccard")
    ranks = {r["setting"]: 0.0 for r in stable}
    for c in criteria:
        ordered = sorted(stable, key=lambda r: -r[c][0])
        for position, r in enumerate(ordered):
            ranks[r["setting"]] += position
    best = min(stable, key=lambda r: (ranks[r["setting"]], r["setting"]))
    most_faithful = max(stable, key=lambda r: r["trustworthiness"][0])
    most_stable = max(stable, key=lambda r: r["distance_spearman"][0])
    line = (
        f"{best['setting']}: best summed rank over trustworthiness "
        f"({best['trustworthiness'][0]:.3f}), continuity ({best['continuity'][0]:.3f}), "
        f"sign-distance Spearman across seeds ({best['distance_spearman'][0]:.3f}) and "
        f"k-nearest-sign Jaccard ({best['sign_jaccard'][0]:.3f})"
    )
    if most_faithful is not best or most_stable is not best:
        line += (
            f"; most faithful alone: {most_faithful['setting']} "
            f"({most_faithful['trustworthiness'][0]:.3f}), most stable alone: "
            f"{most_stable['setting']} ({most_stable['distance_spearman'][0]:.3f})"
        )
    return line


def pair_table(
    frequencies: Frequencies | None, class_names: list[str], k: int, min_count: int = 1
) -> list[dict]:
    """Every pair related in at least `min_count` runs of a group, with frequency, interval,
    the one-sided p-value against chance and whether it is related more often than chance (BH
    at 5% over every pair; `k`: the nearest signs that make a pair related)."""
    if frequencies is None:
        return []
    c, n = frequencies
    n_signs = len(class_names)
    rate = st.chance_rate("related", n_signs, k)
    above = above_chance(frequencies, n_signs, k)
    rows = []
    for i, j in zip(*np.nonzero(np.triu(c >= min_count, 1)), strict=True):
        lo, hi = st.wilson_interval(int(c[i, j]), n)
        f = c[i, j] / n
        rows.append(
            {
                "a": class_names[i],
                "b": class_names[j],
                "count": int(c[i, j]),
                "runs": n,
                "frequency": float(f),
                "low": lo,
                "high": hi,
                "class": st.classify(int(c[i, j]), n),
                "p_chance": float(st.p_above_chance(c[i, j], n, rate)),
                "above_chance": bool(above[i, j]),
            }
        )
    return sorted(rows, key=lambda r: (-r["frequency"], r["a"], r["b"]))


def score_truth(
    truth: dict,
    class_names: list[str],
    dae: dict[str, Frequencies],
    hand_one: np.ndarray | None,
    rec: Recordings,
) -> dict:
    """Planted relations vs the robust pairs across DAE seeds.

    The headline, `own_nearest`, scores what the truth says: each planted sign's nearest sign is
    its partner. Predicted pairs: every planted sign with the sign that is robustly its own
    nearest over the DAE seeds (`stability.classify`; undecided counts as not found);
    precision = share of those pairs that are planted, recall = share of planted pairs found
    (from either side); `undecided`: planted pairs too few seeds could decide. The symmetric relations are scored too, on the
    pairs touching a planted sign (`stability.truth_universe`): there a background sign that
    happens to choose a planted sign as its nearest counts against precision, although the
    truth says nothing about background signs. With k = 3 each planted sign has at least three
    related signs but one planted partner, so precision at k = 3 is low by construction.
    """
    index = {n: i for i, n in enumerate(class_names)}

    def pairs(items) -> set[tuple[int, int]]:
        return {
            tuple(sorted((index[a], index[b])))
            for a, b in (_pair_names(p) for p in items)
            if a in index and b in index
        }

    planted = pairs(truth.get("extension_pairs", [])) | pairs(truth.get("near_twins", []))
    controls = pairs(truth.get("control_pairs", []))
    # a planted sign's nearest sign should be its partner; a control sign's nearest sign is
    # unconstrained (only its control partner is known to be unrelated)
    labelled = {s for p in planted for s in p}
    universe = st.truth_universe(len(class_names), labelled, controls)
    out: dict = {"planted": len(planted), "controls": len(controls)}
    for relation in ("nearest", "partners", "mutual", "related"):
        if relation not in dae:
            continue
        c, n = dae[relation]
        robust = st.robust_pairs(c, n)
        p, r = st.precision_recall(robust, planted, universe)
        out[relation] = {"precision": p, "recall": r, "robust_in_universe": len(robust & universe)}
    c, n = dae["related"]
    out["robust_controls"] = sorted(
        f"{class_names[i]}/{class_names[j]}" for i, j in st.robust_pairs(c, n) & controls
    )
    chosen = st.robust_choices(*dae["own_nearest"], labelled)
    p, r = st.precision_recall(chosen, planted)
    own, runs = dae["own_nearest"]
    undecided = [
        (i, j)
        for i, j in planted - chosen
        if st.classify(int(max(own[i, j], own[j, i])), runs) == "undecided"
    ]
    out["own_nearest"] = {
        "precision": p,
        "recall": r,
        "robust_in_universe": len(chosen),
        "undecided": len(undecided),
    }
    out["missed"] = sorted(f"{class_names[i]}/{class_names[j]}" for i, j in planted - chosen)
    # the headline's false positives: a planted sign robustly nearest to a sign not its partner
    out["unplanted"] = sorted(f"{class_names[i]}/{class_names[j]}" for i, j in chosen - planted)
    if hand_one is not None:
        out["mislabelled_flagged"] = flag_hand_mismatch(
            truth.get("hands", {}), hand_one, rec.labels, class_names
        )
        out["mislabelled_truth"] = sorted(m["sign"] for m in truth.get("mislabelled", []))
    return out


def _pair_names(p) -> tuple[str, str]:
    a, b = p  # the truth stores pairs as [sign, sign]
    return str(a), str(b)


def flag_hand_mismatch(
    stated: dict[str, str], one_handed: np.ndarray, labels: np.ndarray, class_names: list[str]
) -> list[str]:
    """Signs stated two-handed whose recordings the hand-usage heuristic mostly finds one-handed."""
    flagged = []
    for s, name in enumerate(class_names):
        if stated.get(name) in ("two", 2, "2") and np.mean(one_handed[labels == s]) > 0.5:
            flagged.append(name)
    return flagged
