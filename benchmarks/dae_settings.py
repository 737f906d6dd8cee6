"""How fast can the autoencoder train without worse pictures? Settings side by side.

Trains the DAE with each setting below on one classifier's activations (the newest FINISHED
classifier run in the project's store, e.g. after `lstmpaths-run data=auslan stage=classifier`),
one torch thread and the jobs' allocator setting (as in a parallel sweep), `--seeds` seeds each,
and prints per setting the means of: epochs, seconds, validation MSE, trustworthiness (and its
lowest), continuity, and the sign-distance Spearman between seeds (stability, over every pair of
seeds). Not a test: a measurement to choose the sweep's settings from.

    .venv/bin/python benchmarks/dae_settings.py [--classifier RUN_ID] [--seeds 2] [--only TEXT]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
import torch
from omegaconf import OmegaConf

from lstmpaths.autoencoder import encode, reconstruction_mse, train_autoencoder, training_vectors
from lstmpaths.layout import config_root
from lstmpaths.metrics import neighbourhood_scores, subsample
from lstmpaths.pipeline import load_activations
from lstmpaths.run import tune_allocator
from lstmpaths.stability import distance_spearman, sign_distances
from lstmpaths.tracking import client, default_tracking_uri, newest_run

# the shipped sweep recipe, as conf/autoencoder/fast.yaml sets it (precision given per row)
FAST = {
    k: v
    for k, v in OmegaConf.to_container(
        OmegaConf.load(config_root() / "conf/autoencoder/fast.yaml")
    ).items()
    if k not in ("defaults", "precision")
}
# Earlier rounds (batch 512/lr 0.002, stride 2, constant lr at stride 3) are in the README's
# sweep section; the rows of conf/autoencoder/fast.yaml's comment:
SETTINGS = {
    "dae.yaml (study recipe, float32)": {"precision": "32"},
    "fast, float32": FAST | {"precision": "32"},
    "fast, bf16 (the sweeps' recipe on a bf16 CPU)": FAST | {"precision": "bf16"},
    "batch 512, 16 epochs, bf16": FAST | {"batch_size": 512, "max_epochs": 16, "precision": "bf16"},
    "batch 512, 12 epochs, bf16": FAST | {"batch_size": 512, "max_epochs": 12, "precision": "bf16"},
    "batch 256, 10 epochs, lr 0.003, bf16": FAST
    | {"batch_size": 256, "max_epochs": 10, "lr": 0.003, "precision": "bf16"},
    "fast, stride 6, float32": FAST | {"step_stride": 6, "precision": "32"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classifier", help="classifier run id (default: the newest)")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--only", help="substring of the settings to run")
    args = parser.parse_args()
    tune_allocator()
    torch.set_num_threads(1)
    uri = default_tracking_uri()
    mlflow_client = client(uri)
    run_id = args.classifier
    if run_id is None:
        found = newest_run(
            uri, "tags.`lstmpaths.stage` = 'classifier' and attributes.status = 'FINISHED'"
        )
        if found is None:
            raise SystemExit(
                "no FINISHED classifier run: lstmpaths-run data=auslan stage=classifier"
            )
        run_id = found.info.run_id
    source = mlflow_client.get_run(run_id).data.params.get("data.source")
    base = OmegaConf.load("conf/autoencoder/dae.yaml")
    base.window = "study" if source == "auslan" else "signal"
    with tempfile.TemporaryDirectory() as tmp:
        arrays = load_activations(uri, run_id, tmp)
    acts = arrays["activations"].astype(np.float32)
    train = np.flatnonzero(arrays["part"] == "train")
    lengths, labels = arrays["lengths"], arrays["labels"]
    n_signs = len(arrays["class_names"])
    vectors = training_vectors(
        acts[train], lengths[train], str(base.window), tuple(base.study_steps)
    )
    pick = subsample(len(vectors), 5000, seed=0)
    print(f"classifier {run_id} ({source}): {len(vectors)} training vectors, 1 thread")
    rows = []
    for name, change in SETTINGS.items():
        if args.only and args.only not in name:
            continue
        per_seed, dists = [], []
        for seed in range(args.seeds):
            cfg = OmegaConf.merge(base, change, {"seed": seed})
            started = time.perf_counter()
            net, fit = train_autoencoder(cfg, vectors)
            seconds = time.perf_counter() - started
            ((trust, cont),) = neighbourhood_scores(vectors[pick], [encode(net, vectors[pick])], 10)
            codes = encode(net, acts[train])
            dists.append(sign_distances(codes, lengths[train], labels[train], n_signs))
            per_seed.append(
                {
                    "epochs": fit["dae_epochs"],
                    "seconds": seconds,
                    "val_mse": reconstruction_mse(net, fit["val_vectors"]),
                    "trust": trust,
                    "cont": cont,
                }
            )
        row = {"setting": name} | {k: float(np.mean([p[k] for p in per_seed])) for k in per_seed[0]}
        row["trust_lowest"] = min(p["trust"] for p in per_seed)
        pairs = [distance_spearman(a, b) for i, a in enumerate(dists) for b in dists[:i]]
        row["seed_spearman"] = float(np.mean(pairs)) if pairs else None  # mean over seed pairs
        rows.append(row)
        print(json.dumps(row), flush=True)
    print()
    print(
        f"{'setting':50s} {'epochs':>7s} {'s/job':>7s} {'val MSE':>8s} {'trust':>6s} {'lowest':>6s} "
        f"{'cont':>6s} {'stab.':>6s}"
    )
    for r in rows:
        stab = f"{r['seed_spearman']:.3f}" if r["seed_spearman"] is not None else "–"
        print(
            f"{r['setting']:50s} {r['epochs']:7.0f} {r['seconds']:7.1f} {r['val_mse']:8.4f} "
            f"{r['trust']:6.3f} {r['trust_lowest']:6.3f} {r['cont']:6.3f} {stab:>6s}"
        )


if __name__ == "__main__":
    main()
