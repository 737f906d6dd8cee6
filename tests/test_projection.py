"""Projection stage: the autoencoder, metric functions on hand-made cases, and a full tracked run."""

from __future__ import annotations

import subprocess
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch

from conftest import RUN
from lstmpaths.autoencoder import (
    DenoisingAutoencoder,
    encode,
    encode_paths,
    training_vectors,
)
from lstmpaths.devices import resolve_precision
from lstmpaths.errors import ConfigError
from lstmpaths.metrics import (
    continuity,
    hand_ratio,
    hand_separation,
    log1p_display,
    neighbourhood_scores,
    pca_codes,
    shared_prefix,
    subsample,
    trustworthiness,
)


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("activation", ["linear", "tanh", "relu", "sigmoid"])
def test_autoencoder_shapes_and_bottleneck_range(k: int, activation: str) -> None:
    net = DenoisingAutoencoder(100, k, activation)
    x = torch.randn(7, 100) * 3
    assert net(x).shape == (7, 100)
    codes = encode(net, x.numpy().reshape(1, 7, 100))
    assert codes.shape == (1, 7, k)
    if activation == "sigmoid":
        assert codes.min() >= 0 and codes.max() <= 1
    if activation == "tanh":
        assert np.abs(codes).max() <= 1
    if activation == "relu":
        assert codes.min() >= 0
    widths = [m.out_features for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [600, 150, k, 150, 600, 100]


def test_noise_only_in_training() -> None:
    torch.manual_seed(0)
    net = DenoisingAutoencoder(100, 2, noise=0.5)
    x = torch.randn(4, 100)
    net.eval()
    assert torch.equal(net(x), net(x))
    net.train()
    assert not torch.equal(net(x), net(x))
    quiet = DenoisingAutoencoder(100, 2, noise=0.0).train()
    assert torch.equal(quiet(x), quiet(x))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bottleneck": 4}, "choose 2 or 3"),
        ({"activation": "gelu"}, "choose one of linear, tanh, relu, sigmoid"),
        ({"noise": -0.1}, "noise sd must be a number >= 0"),
    ],
)
def test_bad_autoencoder_settings(kwargs, message) -> None:
    with pytest.raises(ConfigError, match=message):
        DenoisingAutoencoder(100, **{"bottleneck": 2, **kwargs})


def test_training_vector_windows() -> None:
    acts = np.zeros((2, 20, 3), dtype=np.float32)
    acts[0, 12:] = np.arange(8)[:, None]  # seq 0: 8 real steps, moving all the way
    acts[1, 5:] = np.r_[np.zeros(3), np.arange(9), np.full(3, 8.0)][:, None]  # still start and end
    study = training_vectors(acts, np.array([8, 15]), "study", (2, 11))
    assert study.shape == (2 * 10, 3)
    signal = training_vectors(acts, np.array([8, 15]), "signal")
    # seq 0: all 8 steps; seq 1 (0,0,0,0,1..8,8,8,8): 0..8 kept, 3 still steps at each end dropped
    assert len(signal) == 8 + 9
    with pytest.raises(ConfigError, match="choose study or signal"):
        training_vectors(acts, np.array([8, 15]), "middle")
    with pytest.raises(ConfigError, match="do not fit 20 time steps"):
        training_vectors(acts, np.array([8, 15]), "study", (10, 64))


def test_isometric_embedding_is_perfectly_trustworthy() -> None:
    rng = np.random.default_rng(0)
    low = rng.normal(size=(200, 2))
    rotation = np.linalg.qr(rng.normal(size=(10, 10)))[0]
    high = (
        np.c_[low, np.zeros((200, 8))] @ rotation * 3.0
    )  # rotated, scaled, padded: same neighbours
    assert trustworthiness(high, low) == pytest.approx(1.0)
    assert continuity(high, low) == pytest.approx(1.0)
    shuffled = low[rng.permutation(200)]
    assert trustworthiness(high, shuffled) < 0.7 and continuity(high, shuffled) < 0.7


@pytest.mark.parametrize("k", [1, 5, 10])
def test_neighbourhood_scores_equal_sklearns_definition(k: int) -> None:
    from sklearn.manifold import trustworthiness as sk_trustworthiness

    rng = np.random.default_rng(k)
    high = rng.normal(size=(400, 30)) * np.linspace(3, 0.1, 30)
    lows = [high[:, :2] + rng.normal(size=(400, 2)) * 0.5, rng.normal(size=(400, 2))]
    for low, (trust, cont) in zip(lows, neighbourhood_scores(high, lows, k), strict=True):
        assert trust == pytest.approx(sk_trustworthiness(high, low, n_neighbors=k), abs=1e-9)
        assert cont == pytest.approx(sk_trustworthiness(low, high, n_neighbors=k), abs=1e-9)
    with pytest.raises(ValueError, match="k=200"):
        neighbourhood_scores(high, lows, 200)


def test_best_weights_keep_the_epoch_with_the_lowest_validation_mse() -> None:
    """BestWeights reads the epoch's value once the module has logged it (its epoch means)."""
    import lightning as L
    from lightning.pytorch.callbacks import Callback

    from lstmpaths.autoencoder import AutoencoderModule
    from lstmpaths.training import BestWeights, VectorBatches

    class Watch(Callback):
        def __init__(self) -> None:
            self.values, self.states = [], []

        def on_validation_end(self, trainer, pl_module) -> None:
            self.values.append(float(trainer.callback_metrics["epoch/val_mse"]))
            self.states.append({k: v.clone() for k, v in pl_module.net.state_dict().items()})

    L.seed_everything(0, verbose=False)
    x = np.random.default_rng(0).normal(size=(256, 8)).astype(np.float32)
    module = AutoencoderModule(DenoisingAutoencoder(8, 2, "tanh", (16, 8), 0.1), lr=0.05)
    best, watch = BestWeights("epoch/val_mse"), Watch()
    trainer = L.Trainer(
        max_epochs=8, callbacks=[best, watch], logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
    )  # fmt: skip
    trainer.fit(module, VectorBatches(x[:192], 32, True), VectorBatches(x[192:], 64, False))
    epoch = int(np.argmin(watch.values))
    assert len(set(watch.values)) == 8 and (best.epoch, best.best) == (epoch, watch.values[epoch])
    assert all(torch.equal(best.state[k], v) for k, v in watch.states[epoch].items())


def test_autoencoder_optimizer_is_one_fused_adam_step_on_cpu() -> None:
    """The module's optimizer: Adam at the module's lr, fused on CPU. Adam's first step moves
    each weight by lr * g / (|g| + eps): checked against the gradients by hand."""
    from lstmpaths.autoencoder import AutoencoderModule

    torch.manual_seed(0)
    module = AutoencoderModule(DenoisingAutoencoder(8, 2, "linear", (16, 8), 0.0), lr=0.01)
    optimizer = module.configure_optimizers()
    assert isinstance(optimizer, torch.optim.Adam) and optimizer.defaults["fused"] is True
    before = [p.detach().clone() for p in module.parameters()]
    x = torch.randn(32, 8)
    torch.nn.functional.mse_loss(module.net(x), x).backward()
    grads = [p.grad.detach().clone() for p in module.parameters()]
    optimizer.step()
    for w0, g, w1 in zip(before, grads, module.parameters(), strict=True):
        expected = w0 - 0.01 * g / (g.abs() + 1e-8)
        assert torch.allclose(w1.detach(), expected, atol=1e-6)


def test_neighbourhoods_refuse_an_embedding_of_other_points() -> None:
    from lstmpaths.metrics import Neighbourhoods

    neighbourhoods = Neighbourhoods.of(np.random.default_rng(0).normal(size=(50, 4)), k=3)
    with pytest.raises(ValueError, match="49 points, the neighbourhoods 50"):
        neighbourhoods.scores(np.zeros((49, 2)))


def test_faithfulness_baseline_is_computed_once_per_classifier() -> None:
    """A sweep worker measures job after job against one baseline; another classifier's vectors
    (or another bottleneck width) must get their own, with the numbers a fresh computation gives."""
    from omegaconf import OmegaConf

    from lstmpaths import projection

    figs = OmegaConf.create({"metrics_subsample": 120, "metrics_k": 5})
    rng = np.random.default_rng(3)
    first = rng.normal(size=(300, 12)).astype(np.float32)
    other = first.copy()
    other[7, 0] += 1.0  # one value differs: another classifier's vectors
    base = projection.baseline(first, 2, figs)
    assert projection.baseline(first.copy(), 2, figs) is base  # equal bytes: reused
    for vectors, k in ((other, 2), (first, 3)):
        fresh = projection.baseline(vectors, k, figs)
        assert fresh is not base
        high = vectors[subsample(len(vectors), 120, seed=0)]
        assert fresh.pca == neighbourhood_scores(high, [pca_codes(high, k, fit_on=vectors)], 5)[0]
        low = high[:, :k] * 2.0
        assert fresh.neighbourhoods.scores(low) == neighbourhood_scores(high, [low], 5)[0]


def test_trustworthiness_by_hand() -> None:
    # 8 points on a line at gaps 1, 2, ..., 7; the 2-D picture swaps the two end points. k = 1.
    # In the picture, point 0 (now at 28) has neighbour 6: its true rank from point 0 is 6;
    # point 1 has neighbour 7 (now at 0): true rank 7; point 7 has neighbour 1: true rank 6;
    # every other point keeps its true nearest neighbour (rank 1).
    # T = 1 - 2 / (n k (2n - 3k - 1)) * sum(rank - k) = 1 - 2 / 96 * (5 + 6 + 5) = 2/3
    high = np.array([0.0, 1, 3, 6, 10, 15, 21, 28])[:, None]
    low = np.c_[high[[7, 1, 2, 3, 4, 5, 6, 0], 0], np.zeros(8)]
    assert trustworthiness(high, low, 1) == pytest.approx(2 / 3)


def test_precision_setting() -> None:
    assert resolve_precision("32") == "32-true"
    assert resolve_precision("bf16") == "bf16-mixed"
    assert resolve_precision("auto") in ("32-true", "bf16-mixed")
    with pytest.raises(ConfigError, match="autoencoder.precision='fp8'"):
        resolve_precision("fp8")
    with pytest.raises(ConfigError, match="classifier.precision='16'"):
        resolve_precision("16", key="classifier.precision")


def test_pca_baseline_recovers_a_plane() -> None:
    rng = np.random.default_rng(1)
    plane = rng.normal(size=(300, 2))
    high = np.c_[plane, 0.001 * rng.normal(size=(300, 5))]
    assert trustworthiness(high, pca_codes(high, 2)) > 0.99


def test_constant_units_by_hand() -> None:
    from lstmpaths.metrics import constant_units
    from lstmpaths.projection import flat_picture

    assert constant_units(np.array([[0.0, 1.0], [0.0, 2.0], [0.0, 3.0]])) == [0]  # dead ReLU
    assert constant_units(np.array([[2.0, 1.0], [2.0, 1.0]])) == [0, 1]
    assert constant_units(np.array([[1.0, 5.0], [1.0 + 1e-9, 9.0]])) == [0]  # 1e-9 of 4: flat
    assert constant_units(np.random.default_rng(0).normal(size=(50, 3))) == []
    ae = {"bottleneck": 3, "activation": "relu", "noise": 0.2, "seed": 2}
    assert flat_picture([], ae) is None
    assert flat_picture([0, 2], ae).startswith("bottleneck units 1, 3 of 3 never vary")
    assert "1 dimension(s), not 3" in flat_picture([0, 2], ae)


def test_shared_prefix_by_hand() -> None:
    # 1-D paths: 0-2 share steps 0 and 1, 0 and 1 also step 2; path 3 shares nothing, and a path
    # left alone on the trajectory (0 at step 3) shares no more with anyone
    paths = np.array(
        [[0, 1, 2, 3, 4], [0, 1, 2, 9, 9], [0, 1, 7, 7, 7], [5, 6, 7, 8, 9]], dtype=np.float32
    )[..., None]
    assert shared_prefix(paths).tolist() == [3, 3, 2, 0]
    # the largest group is followed: two paths equal at step 0 but three others equal there
    paths = np.array([[1, 1], [1, 2], [3, 4], [3, 4], [3, 5]], dtype=np.float64)[..., None]
    assert shared_prefix(paths).tolist() == [0, 0, 2, 2, 1]
    # equal in one coordinate only is not shared; NaN is never equal; nothing shared: all 0
    xy = np.array([[[0.0, 1.0]], [[0.0, 2.0]], [[np.nan, 0.0]], [[np.nan, 0.0]]])
    assert shared_prefix(xy).tolist() == [0, 0, 0, 0]
    # one path shares with nobody; no paths, no steps
    assert shared_prefix(np.zeros((1, 4, 2))).tolist() == [0]
    assert shared_prefix(np.zeros((0, 4, 2))).tolist() == []
    assert shared_prefix(np.zeros((3, 0, 2))).tolist() == [0, 0, 0]


def test_encoding_the_shared_padding_once_gives_every_path_its_codes() -> None:
    # front-padded sequences through one LSTM: the padding steps' outputs are shared bit for bit
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(3, 100, batch_first=True)
    lengths = np.array([5, 9, 12, 12, 3, 7])
    x = np.zeros((len(lengths), 12, 3), dtype=np.float32)
    for i, n in enumerate(lengths):
        x[i, 12 - n :] = np.random.default_rng(i).normal(size=(n, 3))
    with torch.no_grad():
        acts = lstm(torch.from_numpy(x))[0].numpy()
    # each path's padding, but path 4's last two padding steps (after path 0 left) are its own
    assert shared_prefix(acts).tolist() == [7, 3, 0, 0, 7, 5]
    net = DenoisingAutoencoder(100, 2)
    codes = encode_paths(net, acts)
    assert codes.shape == (6, 12, 2)
    # the same codes as encoding every step (to float rounding: a matmul rounds a row by where
    # it sits in the batch), and the padding steps' codes equal across paths
    np.testing.assert_allclose(codes, encode(net, acts), rtol=0, atol=1e-6)
    assert np.array_equal(codes[0, :7], codes[4, :7]) and np.array_equal(codes[1, :3], codes[5, :3])
    # nothing shared: every path encoded on its own
    unpadded = acts[[2, 3]]
    np.testing.assert_allclose(encode_paths(net, unpadded), encode(net, unpadded), atol=1e-6)


def test_cpu_encoding_in_cache_sized_batches_keeps_every_row_in_place(monkeypatch) -> None:
    import lstmpaths.autoencoder as autoencoder
    import lstmpaths.devices as devices

    monkeypatch.setattr(devices, "CPU_INFERENCE_ROWS", 7)
    rows, batches = [], autoencoder._batches
    monkeypatch.setattr(
        autoencoder, "_batches", lambda v, n, device: rows.append(n) or batches(v, n, device)
    )
    torch.manual_seed(0)
    net = DenoisingAutoencoder(5, 2, "tanh", (6, 4), 0.1)
    vectors = np.random.default_rng(0).normal(size=(3, 10, 5)).astype(np.float32)  # 30 rows
    batched = encode(net, vectors)  # 5 batches of at most 7 rows
    whole = encode(net, vectors, batch_size=30)
    assert rows == [7, 30] and batched.shape == (3, 10, 2)
    np.testing.assert_allclose(batched, whole, rtol=0, atol=1e-6)
    assert not np.allclose(batched[:, ::-1], whole, atol=1e-3)  # rows differ: order is checked


def test_hand_ratio_by_hand() -> None:
    left = np.zeros((5, 2))
    right = np.array([[0, 0], [1, 0], [2, 0], [3, 0], [4, 0]], dtype=float)
    assert hand_ratio(left, right) == 0.0
    left2 = right * 0.5
    # diffs: right |1| four times and 0 four times -> mean 0.5; left half of that
    assert hand_ratio(left2, right) == pytest.approx(0.5)
    # keeping only the 2 smallest differences drops the moves: 0 / 0 is guarded
    assert hand_ratio(left2, right, n_smallest=2) == 0.0


def test_hand_separation() -> None:
    rng = np.random.default_rng(2)
    apart = np.r_[rng.normal(0, 0.1, (50, 2)), rng.normal(5, 0.1, (50, 2))]
    label = np.r_[np.ones(50), np.zeros(50)].astype(bool)
    assert hand_separation(apart, label) == 1.0
    mixed = rng.normal(0, 1, (100, 2))
    assert hand_separation(mixed, label) < 0.75
    assert np.isnan(hand_separation(apart, np.r_[np.ones(98), np.zeros(2)].astype(bool)))


def test_log1p_display_and_subsample() -> None:
    np.testing.assert_allclose(log1p_display(np.array([-np.e + 1, 0, np.e - 1])), [-1, 0, 1])
    a, b = subsample(10_000, 100, seed=0), subsample(10_000, 100, seed=0)
    assert np.array_equal(a, b) and len(np.unique(a)) == 100
    assert np.array_equal(subsample(50, 100), np.arange(50))


PATH_FIGURES = {
    "paths.png",
    "last_step.png",
    "hands.png",
    "hand_ratio_hist.png",
    "misclassified_train.png",
    "misclassified_val.png",
    "misclassified_test.png",
    "paths.gif",
    "paths.html",
}


@pytest.mark.parametrize("k", [2, 3])
def test_paths_run_logs_every_figure_and_metric(tmp_path: Path, k: int) -> None:
    args = [
        RUN,
        "data.n_signs=12",
        "data.n_recordings=9",
        "classifier.max_epochs=3",
        "classifier.net.hidden_size=16",
        "autoencoder.max_epochs=3",
        "autoencoder.widths=[32,8]",
        f"autoencoder.bottleneck={k}",
        f"autoencoder.precision={'bf16' if k == 3 else '32'}",
        "classifier.threads=2",
        f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
        f"hydra.run.dir={tmp_path}/out",
    ]
    result = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name("lstmpaths")
    (run,) = client.search_runs([exp.experiment_id], "tags.`lstmpaths.stage` = 'paths'")
    (clf,) = client.search_runs([exp.experiment_id], "tags.`lstmpaths.stage` = 'classifier'")
    assert run.info.status == "FINISHED"
    assert run.data.tags["lstmpaths.classifier_run_id"] == clf.info.run_id
    assert run.data.tags["lstmpaths.dae_precision"] == ("bf16-mixed" if k == 3 else "32-true")
    for metric in (
        "recon_mse_val",
        "trustworthiness",
        "continuity",
        "pca_trustworthiness",
        "pca_continuity",
        "hand_separation",
    ):
        assert 0 <= run.data.metrics[metric] <= 1, metric
    figures = {
        a.path.removeprefix("figures/") for a in client.list_artifacts(run.info.run_id, "figures")
    }
    expected = PATH_FIGURES | ({"paths_3d.png"} if k == 3 else set())
    assert expected <= figures
    assert sum(f.startswith("group_") for f in figures) == 4  # one per planted relation kind
    local = client.download_artifacts(run.info.run_id, "paths.npz", str(tmp_path))
    with np.load(local) as npz:
        assert npz["codes"].shape[1:] == (90, k) and len(npz["codes"]) == len(npz["labels"]) == len(
            npz["ids"]
        )
    html = Path(
        client.download_artifacts(run.info.run_id, "figures/paths.html", str(tmp_path))
    ).read_text()
    assert "plotly" in html and "sign00" in html and "<script" in html


def test_unknown_sign_in_groups_is_a_clear_error(tmp_path: Path) -> None:
    args = [
        RUN,
        "data.n_signs=10",
        "data.n_recordings=6",
        "classifier.max_epochs=1",
        "classifier.net.hidden_size=8",
        "autoencoder.max_epochs=1",
        "autoencoder.widths=[16,8]",
        "figures.groups=[[sign01,drnk]]",
        f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
        f"hydra.run.dir={tmp_path}/out",
    ]
    result = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert result.returncode == 2
    assert (
        "figures.groups: unknown sign(s) ['drnk']" in result.stderr
        and "Traceback" not in result.stderr
    )


def test_uea_data_runs_end_to_end_without_glove_assumptions(tmp_path: Path) -> None:
    """3 channels, 40 steps, 3 classes: nothing may assume Auslan's 90 x 22 x 94."""
    rng = np.random.default_rng(0)
    header = "@problemName Toy\n@dimensions 3\n@equalLength false\n@classLabel true a b c\n@data\n"

    def rows(n: int) -> str:
        out = []
        for i in range(n):
            label = "abc"[i % 3]
            length = int(rng.integers(25, 40))
            t = np.linspace(0, 1, length)
            dims = [
                np.sin((i % 3 + 1) * 3 * t + d) + 0.05 * rng.normal(size=length) for d in range(3)
            ]
            out.append(":".join(",".join(f"{v:.4f}" for v in dim) for dim in dims) + f":{label}")
        return "\n".join(out) + "\n"

    (tmp_path / "Toy_TRAIN.ts").write_text(header + rows(60))
    (tmp_path / "Toy_TEST.ts").write_text(header + rows(21))
    args = [
        RUN,
        "data=uea",
        f"data.path={tmp_path}/Toy_TRAIN.ts",
        "classifier.max_epochs=3",
        "classifier.net.hidden_size=8",
        "autoencoder.max_epochs=2",
        "autoencoder.widths=[16,8]",
        f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
        f"hydra.run.dir={tmp_path}/out",
    ]
    result = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name("lstmpaths")
    (run,) = client.search_runs([exp.experiment_id], "tags.`lstmpaths.stage` = 'paths'")
    figures = {
        a.path.removeprefix("figures/") for a in client.list_artifacts(run.info.run_id, "figures")
    }
    assert {"paths.png", "last_step.png", "paths.html"} <= figures
    assert (
        "hands.png" not in figures and "hand_separation" not in run.data.metrics
    )  # skipped: not glove data
    local = client.download_artifacts(run.info.run_id, "paths.npz", str(tmp_path))
    with np.load(local) as npz:
        assert npz["codes"].shape == (81, int(npz["lengths"].max()), 2)  # padded to the longest
        assert set(npz["part"]) == {"train", "val", "test"}
