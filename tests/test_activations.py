"""Your own activations (`data=activations`) and your own cell (`classifier.net.cell=gru`).

The end-to-end test does what the README tells a user to: train a recurrent net of one's own
(a small GRU, plain PyTorch), export its per-step states to .npz, run a DAE seed sweep on them
with `lstmpaths-run`, and read the pairs in `lstmpaths-report`'s tables."""

from __future__ import annotations

import csv
import re
import subprocess
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from torch import nn

from conftest import REPORT, RUN, TINY_JOB
from lstmpaths import stability as st
from lstmpaths.activations import activation_paths, checked_arrays, read_models
from lstmpaths.classifier import SignRNN
from lstmpaths.data import pad_front
from lstmpaths.errors import ConfigError, DataError
from lstmpaths.synthetic import generate

N_SIGNS, N_RECORDINGS = 12, 9


def export_gru_states(path: Path, seed: int, epochs: int = 60) -> None:
    """A user's own model: a GRU sign classifier trained here, its states saved as the README's
    format describes (front-padded like lstmpaths' own)."""
    data = generate(n_signs=N_SIGNS, n_recordings=N_RECORDINGS, seed=0)
    t = int(data.lengths.max())
    x = torch.from_numpy(pad_front(data.sequences, t))
    y = torch.from_numpy(data.labels)
    recording = np.arange(len(y)) % N_RECORDINGS
    part = np.where(recording < 6, "train", np.where(recording == 6, "val", "test"))
    train = torch.from_numpy(part == "train")
    torch.manual_seed(seed)
    gru, head = nn.GRU(x.shape[2], 24, batch_first=True), nn.Linear(24, N_SIGNS)
    opt = torch.optim.Adam([*gru.parameters(), *head.parameters()], lr=0.01)
    for _ in range(epochs):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(head(gru(x[train])[0][:, -1]), y[train])
        loss.backward()
        opt.step()
    with torch.no_grad():
        states = gru(x)[0]
        predictions = head(states[:, -1]).argmax(1)
    np.savez_compressed(
        path,
        activations=states.numpy(),
        labels=data.labels,
        lengths=data.lengths,
        class_names=np.array(data.class_names),
        part=part,
        ids=np.array(data.ids),
        predictions=predictions.numpy(),
    )


@pytest.mark.slow
def test_own_gru_states_through_a_dae_sweep_and_the_report(tmp_path: Path) -> None:
    for seed in (1, 2):  # two models of the user's: the report compares them too
        export_gru_states(tmp_path / f"gru{seed}.npz", seed)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    sweep = subprocess.run(
        [
            RUN,
            "-m",
            "data=activations",
            f"data.path={tmp_path}/gru*.npz",
            "autoencoder=fast",
            "autoencoder.max_epochs=3",
            "autoencoder.widths=[32,8]",
            "autoencoder.seed=0,1,2",
            "figures.animation=false",
            "figures.interactive=false",
            "jobs=1",
            f"tracking.uri={uri}",
            f"hydra.sweep.dir={tmp_path}/sweep",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert sweep.returncode == 0, sweep.stdout[-2000:] + sweep.stderr[-3000:]
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("lstmpaths")
    imported = client.search_runs([exp.experiment_id], "tags.`lstmpaths.stage` = 'classifier'")
    assert sorted(r.data.tags["lstmpaths.model"] for r in imported) == ["gru1", "gru2"]
    assert all(r.data.tags["lstmpaths.data_source"] == "activations" for r in imported)
    assert all(0 < r.data.metrics["test_acc"] <= 1 for r in imported)  # from the predictions
    paths = client.search_runs([exp.experiment_id], "tags.`lstmpaths.stage` = 'paths'")
    assert len(paths) == 6 and all(r.info.status == "FINISHED" for r in paths)
    (parent,) = client.search_runs([exp.experiment_id], "tags.`lstmpaths.stage` = 'sweep'")
    assert f"{REPORT} --parent {parent.info.run_id}" in sweep.stdout  # where to go next
    # progress counts jobs (3), not the paths runs (2 models each)
    assert f"[sweep] {'█' * 20} 3/3 jobs done" in sweep.stdout
    assert "4/4 jobs done" not in sweep.stdout and "6/6" not in sweep.stdout

    out = tmp_path / "report"
    report = subprocess.run(
        [REPORT, "--parent", parent.info.run_id, "--tracking-uri", uri, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert report.returncode == 0, report.stderr[-3000:]
    with (out / "pairs_across_dae_seeds.csv").open() as fh:
        dae_rows = list(csv.DictReader(fh))
    with (out / "pairs_across_lstm_seeds.csv").open() as fh:
        lstm_rows = list(csv.DictReader(fh))
    assert dae_rows and lstm_rows
    assert {row["runs"] for row in dae_rows} == {"3"}  # 3 DAE seeds on the main model
    assert {row["runs"] for row in lstm_rows} == {"6"}  # 2 models x 3 DAE seeds
    assert all(0 < int(row["count"]) <= int(row["runs"]) for row in dae_rows + lstm_rows)
    # the 100-D column is the main model's own states: recomputed here from its file
    models = {r.data.tags["lstmpaths.model"]: r.info.run_id for r in imported}
    dae_classifiers = {r.data.tags["lstmpaths.classifier_run_id"] for r in paths}
    assert dae_classifiers == set(models.values())
    report_md = (out / "report.md").read_text()
    main = re.search(r"on one classifier \((gru\d)\)", report_md).group(1)  # named by file
    with np.load(tmp_path / f"{main}.npz") as z:
        train = np.flatnonzero(z["part"] == "train")
        dist = st.sign_distances(
            z["activations"][train].astype(np.float16).astype(np.float64),
            z["lengths"][train],
            z["labels"][train],
            N_SIGNS,
            "path",
            20,
        )
        names = [str(s) for s in z["class_names"]]
    related = st.relations(dist, 3)
    index = {n: i for i, n in enumerate(names)}
    reported = {(row["a"], row["b"]): row["related_in_100d"] == "True" for row in dae_rows}
    expected = {pair: bool(related[index[pair[0]], index[pair[1]]]) for pair in reported}
    assert reported == expected
    with (out / "cka.csv").open() as fh:
        cka = {row["model"]: row for row in csv.DictReader(fh)}
    assert float(cka["gru1"]["gru1"]) == pytest.approx(1.0)
    assert 0 < float(cka["gru1"]["gru2"]) < 1


def _write(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def _good(n: int = 6, t: int = 5, h: int = 3) -> dict:
    rng = np.random.default_rng(0)
    return {
        "activations": rng.normal(size=(n, t, h)).astype(np.float32),
        "labels": np.arange(n) % 3,
    }


def test_defaults_of_the_optional_arrays() -> None:
    arrays = checked_arrays(_good(), "a.npz")
    assert arrays["lengths"].tolist() == [5] * 6
    assert arrays["class_names"].tolist() == ["0", "1", "2"]
    assert arrays["ids"].tolist() == ["0", "1", "2", "3", "4", "5"]
    assert arrays["activations"].dtype == np.float16 and "part" not in arrays
    big = _good()
    big["activations"][0, 0, 0] = 1e6  # beyond float16: kept in float32
    assert checked_arrays(big, "a.npz")["activations"].dtype == np.float32


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"activations": None}, "a.npz: no array activations"),
        ({"labels": None}, "a.npz: no array labels"),
        ({"activations": np.zeros((6, 5))}, "activations must be (N, T, H)"),
        ({"labels": np.arange(5)}, "labels must have shape (6,)"),
        (
            {"labels": np.array([0, 1, 2, 0, 1, 7]), "class_names": np.array(["a", "b", "c"])},
            "labels must lie in 0..2 (3 class names), found 0..7",
        ),
        ({"labels": np.array([0, 1, 2, 0, 1, -1])}, "labels must lie in 0..2"),
        ({"labels": np.array([0, 1, 2, 0, 1, 0.5])}, "labels must be whole numbers"),
        ({"class_names": np.array(["a", "b"])}, "labels must lie in 0..1 (2 class names)"),
        ({"lengths": np.array([5, 5, 6, 5, 5, 5])}, "lengths[2] = 6 is outside 1..T (T = 5)"),
        ({"lengths": np.array([5, 5, 0, 5, 5, 5])}, "lengths[2] = 0 is outside 1..T"),
        ({"part": np.array(["train"] * 5 + ["dev"])}, "part holds ['dev']"),
        ({"part": np.array(["test"] * 6)}, "part names no train recording"),
        ({"ids": np.array(["a"] * 6)}, "ids must be unique"),
        ({"predictions": np.arange(6)}, "predictions must lie in 0..2"),
    ],
)
def test_bad_arrays_are_named(change: dict, message: str) -> None:
    arrays = _good()
    for key, value in change.items():
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value
    with pytest.raises(DataError) as err:
        checked_arrays(arrays, "a.npz")
    assert message in str(err.value)


def test_nan_names_the_recording(tmp_path: Path) -> None:
    arrays = _good()
    arrays["activations"][4, 2, 1] = np.nan
    with pytest.raises(DataError, match=r"x.npz: activations of recording 4 hold NaN"):
        read_models(str(_write(tmp_path / "x.npz", **arrays)))


def test_files_that_are_not_npz_or_need_pickle(tmp_path: Path) -> None:
    (tmp_path / "notes.npz").write_text("not a zip")
    with pytest.raises(DataError, match="notes.npz: not a readable .npz file"):
        read_models(str(tmp_path / "notes.npz"))
    objects = {**_good(), "ids": np.array([object()] * 6, dtype=object)}
    np.savez(tmp_path / "obj.npz", **objects)
    with pytest.raises(DataError, match="obj.npz: .*save plain numeric and text arrays"):
        read_models(str(tmp_path / "obj.npz"))


def test_paths_globs_and_lists(tmp_path: Path) -> None:
    for name in ("b", "a", "c"):
        _write(tmp_path / f"{name}.npz", **_good())
    assert [p.name for p in activation_paths(str(tmp_path / "*.npz"))] == [
        "a.npz",
        "b.npz",
        "c.npz",
    ]
    listed = activation_paths([str(tmp_path / "c.npz"), str(tmp_path / "a.npz")])
    assert [p.name for p in listed] == ["c.npz", "a.npz"]
    with pytest.raises(ConfigError, match=r"data.path: .*\*.npy matches no file"):
        activation_paths(str(tmp_path / "*.npy"))
    with pytest.raises(ConfigError, match="missing.npz: no such file"):
        activation_paths(str(tmp_path / "missing.npz"))
    with pytest.raises(ConfigError, match="data.path is not set"):
        activation_paths(None)
    models = read_models(str(tmp_path / "*.npz"))
    assert [m.name for m in models] == ["a", "b", "c"]


def test_files_must_describe_the_same_recordings(tmp_path: Path) -> None:
    _write(tmp_path / "a.npz", **_good())
    other = _good()
    other["labels"] = np.array([0, 0, 1, 1, 2, 2])
    _write(tmp_path / "b.npz", **other)
    with pytest.raises(DataError, match="b.npz: its labels differ from .*a.npz's"):
        read_models([str(tmp_path / "a.npz"), str(tmp_path / "b.npz")])
    wider = _good(h=7)  # another model width is fine: only the recordings must agree
    _write(tmp_path / "b.npz", **wider)
    assert len(read_models([str(tmp_path / "a.npz"), str(tmp_path / "b.npz")])) == 2


def test_a_bad_file_through_the_command_is_one_line(tmp_path: Path) -> None:
    arrays = _good()
    arrays["lengths"] = np.array([5, 5, 5, 9, 5, 5])
    path = _write(tmp_path / "mine.npz", **arrays)
    done = subprocess.run(
        [RUN, "data=activations", f"data.path={path}", f"tracking.uri=sqlite:///{tmp_path}/m.db"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        f"lstmpaths-run: error: {path}: lengths[3] = 9 is outside 1..T (T = 5)"
    )


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_cell_layers_and_the_projected_layer(cell: str) -> None:
    torch.manual_seed(0)
    net = SignRNN(4, 3, hidden_size=6, num_layers=2, cell=cell, layer=1)
    x = torch.randn(5, 7, 4)
    first = getattr(nn, cell.upper())(4, 6, batch_first=True)
    first.load_state_dict(net.layers[0].state_dict())
    second = getattr(nn, cell.upper())(6, 6, batch_first=True)
    second.load_state_dict(net.layers[1].state_dict())
    with torch.no_grad():
        low = first(x)[0]
        torch.testing.assert_close(net.sequence_outputs(x), low)  # layer 1 is projected
        torch.testing.assert_close(net(x), net.head(second(low)[0][:, -1]))  # top layer read
    assert SignRNN(4, 3, num_layers=3).layer == 3
    with pytest.raises(ConfigError, match="classifier.net.layer=3: the net has 2 layer"):
        SignRNN(4, 3, num_layers=2, layer=3)
    with pytest.raises(ConfigError, match="classifier.net.cell='rnn': choose one of lstm, gru"):
        SignRNN(4, 3, cell="rnn")


def test_classifier_with_a_two_layer_gru(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    done = subprocess.run(
        [
            RUN,
            *TINY_JOB,
            "classifier.net.cell=gru",
            "classifier.net.num_layers=2",
            f"tracking.uri={uri}",
            f"hydra.run.dir={tmp_path}/out",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("lstmpaths")
    (clf,) = client.search_runs([exp.experiment_id], "tags.`lstmpaths.stage` = 'classifier'")
    assert clf.data.params["classifier.net.cell"] == "gru"
    state = torch.load(
        client.download_artifacts(clf.info.run_id, "classifier.pt", str(tmp_path)),
        weights_only=True,
    )["state_dict"]
    hidden = 16  # TINY_JOB
    assert state["layers.0.weight_hh_l0"].shape == (3 * hidden, hidden)  # GRU: 3 gates
    assert state["layers.1.weight_ih_l0"].shape == (3 * hidden, hidden)  # fed by layer 1
    assert "layers.2.weight_ih_l0" not in state
    (paths,) = client.search_runs([exp.experiment_id], "tags.`lstmpaths.stage` = 'paths'")
    assert paths.info.status == "FINISHED"
    # the end of the job says where its pictures are, and they are there
    figures = next(
        line.split(": ", 1)[1] for line in done.stdout.splitlines() if line.startswith("figures: ")
    )
    assert Path(figures, "paths.png").is_file()
    assert f"runs/{paths.info.run_id}" in done.stdout
