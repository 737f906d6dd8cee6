"""The stages called in-process on a composed config, with no MLflow anywhere: data ->
classifier (fit, evaluate, activations) -> projection (paths, quality, hand usage) -> figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

from conftest import REPO, TINY_JOB
from lstmpaths import figures as fig
from lstmpaths.autoencoder import DenoisingAutoencoder, encode_paths
from lstmpaths.classifier import (
    SignRNN,
    classifier_precision,
    evaluation_metrics,
    extract_activations,
    fastest,
    fit_classifier,
    padded_inputs,
    same_at_thread_counts,
    standardizer,
    write_classifier_files,
)
from lstmpaths.devices import resolve_device
from lstmpaths.errors import ConfigError
from lstmpaths.pipeline import presentation
from lstmpaths.prepare import prepare_data, sign_groups
from lstmpaths.projection import project, write_paths_files
from lstmpaths.settings import check_config


def _tiny_job(*overrides: str):
    """The tiny job's composed config, prepared data and standardized classifier inputs."""
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[*TINY_JOB, *overrides, "accelerator=cpu"])
    prepared = prepare_data(cfg.data)
    scale = standardizer(prepared.data, prepared.split.train)
    return cfg, prepared, scale, padded_inputs(prepared.data, prepared.maxlen, scale)


def test_every_stage_in_process_without_mlflow(tmp_path: Path) -> None:
    cfg, prepared, scale, inputs = _tiny_job()
    check_config(cfg)
    device = resolve_device(cfg.accelerator)
    data, split = prepared.data, prepared.split

    net, facts = fit_classifier(cfg.classifier, inputs, data, split, device, tmp_path / "ckpt")
    assert facts["epochs"] == 2 and facts["train_seconds"] > 0
    activations, probs = extract_activations(net, inputs, device=device.torch)
    assert activations.shape == (len(data), prepared.maxlen, 16)
    metrics = evaluation_metrics(data.labels, probs.argmax(1), probs, split)
    assert 0 <= metrics["test_acc"] <= 1
    arrays = write_classifier_files(tmp_path / "clf", net, scale, activations, probs, data, split)
    assert (tmp_path / "clf" / "activations.npz").is_file()

    projection = project(cfg.autoencoder, cfg.figures, arrays, data, device)
    assert projection.codes.shape == (len(data), prepared.maxlen, 2)
    assert 0 < projection.metrics["trustworthiness"] <= 1
    assert projection.metrics["constant_units"] == 0 and projection.warning is None
    assert projection.hand_ratios is not None  # synthetic glove data: hand usage measured
    files = write_paths_files(tmp_path, projection, arrays)
    assert files == [tmp_path / "paths.npz", tmp_path / "autoencoder.pt"]
    with np.load(tmp_path / "paths.npz") as stored:
        # float16 on disk, and exactly what the metrics and figures of the job used
        assert stored["codes"].dtype == np.float16
        assert np.array_equal(stored["codes"], projection.codes)
        # the hand usage travels with the paths (no CSV per run: the same in every run)
        assert np.array_equal(stored["hand_ratios"], projection.hand_ratios.astype(np.float32))
        assert np.array_equal(stored["one_handed"], projection.one_handed)
    weights = torch.load(tmp_path / "autoencoder.pt", weights_only=True)
    assert {w.dtype for w in weights.values()} == {torch.float16}
    ae = cfg.autoencoder
    reloaded = DenoisingAutoencoder(16, 2, ae.activation, tuple(ae.widths))
    reloaded.load_state_dict(weights)  # into float32 parameters
    again = encode_paths(reloaded.eval(), arrays["activations"].astype(np.float32))
    span = np.ptp(projection.codes.reshape(-1, 2), axis=0).max()
    assert np.abs(again - projection.codes).max() < 2e-3 * span
    view = fig.PathsView.of_run(arrays, projection.codes, cfg.autoencoder, projection.hand_ratios)
    groups = sign_groups(cfg.figures.groups, view.class_names, data.truth)
    out = tmp_path / "figures"
    out.mkdir()
    files += fig.draw_paths_figures(view, groups, presentation(cfg.figures), out)
    assert (out / "paths.png").read_bytes()[:4] == b"\x89PNG"
    assert all(f.exists() for f in files)
    assert not (tmp_path / "mlruns").exists()


STAGES = (
    "data", "sources", "synthetic", "splits", "prepare", "settings", "devices", "layout", "training",
    "classifier", "autoencoder", "projection", "metrics", "figures", "stability", "analysis",
    "report_files",
)  # fmt: skip


def test_nothing_below_the_orchestration_imports_mlflow() -> None:
    for name in STAGES:
        text = (REPO / "src" / "lstmpaths" / f"{name}.py").read_text()
        assert "import mlflow" not in text and "from mlflow" not in text, name
        assert "lstmpaths.tracking" not in text, name


def test_a_classifiers_activations_are_read_once_per_process(tmp_path: Path, monkeypatch) -> None:
    """Sweep workers run job after job on one classifier: its activations are read from the
    store once, handed out read-only, and read again for another run."""
    from lstmpaths import pipeline, tracking
    from lstmpaths.processes import LastValue

    downloads = []

    class Store:
        def download_artifacts(self, run_id: str, path: str, folder: str) -> str:
            downloads.append(run_id)
            local = Path(folder) / f"{run_id}-{path}"
            np.savez(local, activations=np.full((2, 3, 4), len(downloads), np.float32))
            return str(local)

    monkeypatch.setattr(tracking, "client", lambda uri: Store())
    monkeypatch.setattr(pipeline, "_last_activations", LastValue())
    first = pipeline.load_activations("sqlite:///a.db", "run1", str(tmp_path))
    assert pipeline.load_activations("sqlite:///a.db", "run1", str(tmp_path)) is first
    with pytest.raises(ValueError, match="read-only"):
        first["activations"][0, 0, 0] = 0.0
    other = pipeline.load_activations("sqlite:///a.db", "run2", str(tmp_path))
    elsewhere = pipeline.load_activations("sqlite:///b.db", "run2", str(tmp_path))
    assert downloads == ["run1", "run2", "run2"]
    assert other["activations"][0, 0, 0] == 2 and elsewhere["activations"][0, 0, 0] == 3


def test_a_unit_that_never_varies_is_reported_on_the_run(tmp_path: Path, monkeypatch) -> None:
    """A dead bottleneck unit (seen on the real data: one ReLU job of 43 had unit 1 all zero)
    flattens the picture: the job says so in its log and the run's `lstmpaths.warning` tag."""
    import mlflow
    import torch

    from lstmpaths import metrics
    from lstmpaths.run import run_job

    monkeypatch.setattr(metrics, "constant_units", lambda points: [0])
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    # MLflow exports the uri a process tracks to (MLFLOW_TRACKING_URI): monkeypatch puts it back
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[*TINY_JOB, "accelerator=cpu", f"tracking.uri={uri}"])
    threads = torch.get_num_threads()
    try:
        run_job(cfg)  # in-process, so the patched function is the one the job calls
    finally:
        torch.set_num_threads(threads)  # the job sets its own
    client = mlflow.MlflowClient(uri)
    (run,) = client.search_runs(
        [client.get_experiment_by_name("lstmpaths").experiment_id],
        "tags.`lstmpaths.stage` = 'paths'",
    )
    assert run.data.metrics["constant_units"] == 1
    warning = run.data.tags["lstmpaths.warning"]
    assert "bottleneck unit 1 of 2 never varies" in warning
    assert "1 dimension(s), not 2" in warning


def test_a_worker_keeps_one_last_value() -> None:
    from lstmpaths.processes import LastValue

    computed = []

    def compute(name: str):
        return lambda: computed.append(name) or name.upper()

    last = LastValue()
    assert last.get("a", compute("a")) == "A" and last.get("a", compute("a2")) == "A"
    assert last.get("b", compute("b")) == "B" and last.get("a", compute("a3")) == "A3"
    assert computed == ["a", "b", "a3"]  # one entry: "a" was dropped when "b" came


def test_a_workers_next_job_frees_the_last_jobs_garbage_and_freezes_what_lives() -> None:
    """settle_heap collects before it freezes: garbage from the jobs before (a reference cycle
    no one holds) is freed, not kept forever; what is alive leaves the collector's walks."""
    import gc
    import weakref

    from lstmpaths.processes import settle_heap

    class Node:
        pass

    garbage = Node()
    garbage.me = garbage  # a cycle: only the collector frees it
    dead = weakref.ref(garbage)
    alive = [Node() for _ in range(1000)]
    del garbage
    frozen_before = gc.get_freeze_count()
    try:
        settle_heap()
        assert dead() is None
        assert gc.get_freeze_count() >= frozen_before + len(alive)
        assert not any(o is alive[0] for o in gc.get_objects())  # out of the walks
    finally:
        gc.unfreeze()  # back to the collector, as for the tests after this one


def test_fit_trains_without_filling_new_memory_and_restores_the_setting() -> None:
    """`training.fit` turns off torch's NaN filling of new tensors (a cost of
    deterministic=True) for the fit only."""
    import lightning as L
    import torch
    import torch.utils.deterministic

    from lstmpaths.training import VectorBatches, fit

    seen = []

    class Probe(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)

        def training_step(self, batch, batch_idx):  # noqa: ARG002
            seen.append(torch.utils.deterministic.fill_uninitialized_memory)
            return self.layer(batch[0]).pow(2).mean()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    trainer = L.Trainer(
        max_epochs=1, deterministic=True, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
    )  # fmt: skip
    assert torch.utils.deterministic.fill_uninitialized_memory is True
    fit(trainer, Probe(), train_dataloaders=VectorBatches(np.ones((8, 4)), 4, shuffle=False))
    assert seen == [False, False]
    assert torch.utils.deterministic.fill_uninitialized_memory is True


def test_both_trainings_give_the_same_bits_with_the_memory_filling_on(
    tmp_path: Path, monkeypatch
) -> None:
    """No number depends on turning the filling off: the classifier (with its augmentation)
    and the autoencoder train to the same weights bit for bit with it on."""
    import torch

    import lstmpaths.autoencoder
    import lstmpaths.training
    from lstmpaths.autoencoder import train_autoencoder

    cfg, prepared, _, inputs = _tiny_job()
    data, split = prepared.data, prepared.split
    device = resolve_device("cpu")
    vectors = np.random.default_rng(0).normal(size=(600, 16)).astype(np.float32)
    ae_cfg = cfg.autoencoder.copy()
    ae_cfg.precision = "32"

    def train_both(folder: str) -> list[torch.Tensor]:
        net, _ = fit_classifier(cfg.classifier, inputs, data, split, device, tmp_path / folder)
        dae, _ = train_autoencoder(ae_cfg, vectors)
        return [p.detach().clone() for p in (*net.parameters(), *dae.parameters())]

    fast = train_both("fast")

    def fit_with_filling(trainer, *args, **kwargs) -> None:
        assert torch.utils.deterministic.fill_uninitialized_memory is True
        trainer.fit(*args, **kwargs)

    monkeypatch.setattr(lstmpaths.training, "fit", fit_with_filling)
    monkeypatch.setattr(lstmpaths.autoencoder, "fit", fit_with_filling)
    filled = train_both("filled")
    assert all(torch.equal(a, b) for a, b in zip(fast, filled, strict=True))


def test_the_fastest_thread_count_has_the_lowest_median_and_fewer_threads_break_ties() -> None:
    assert fastest({2: 0.05, 1: 0.035}) == 1
    assert fastest({4: 0.021, 2: 0.02, 1: 0.5}) == 2
    assert fastest({2: 0.02, 1: 0.02}) == 1


def test_a_net_whose_numbers_depend_on_the_thread_count_is_caught() -> None:
    import torch
    from torch import nn

    class CountsThreads(nn.Linear):
        def forward(self, x):  # a stand-in for a kernel that sums in another order
            return super().forward(x) * (1 + 1e-6 * torch.get_num_threads())

    x, y = torch.randn(8, 5), torch.randint(0, 3, (8,))
    torch.manual_seed(0)
    assert same_at_thread_counts(nn.Linear(5, 3), x, y, [2, 1])
    torch.manual_seed(0)
    net = CountsThreads(5, 3)
    assert not same_at_thread_counts(net, x, y, [2, 1])
    assert net.weight.grad is None  # the check leaves no gradient behind


def test_the_thread_count_is_timed_again_as_the_load_changes(monkeypatch) -> None:
    """Every `every` epochs the counts are timed again: when the count that was slow (another
    program starting up) becomes the fast one, training switches to it."""
    import contextlib
    from types import SimpleNamespace

    import torch
    from torch import nn

    import lstmpaths.classifier as classifier

    slow, now = {"count": 2}, [0.0]

    def clock() -> float:  # a batch at the slow count takes 50 ms, at the other 10 ms
        now[0] += 0.05 if torch.get_num_threads() == slow["count"] else 0.01
        return now[0]

    monkeypatch.setattr(classifier.time, "perf_counter", clock)
    torch.manual_seed(0)
    module = SimpleNamespace(net=nn.Linear(5, 3))
    batch = (torch.randn(8, 5), torch.randint(0, 3, (8,)))
    timing = classifier.FastestThreads(2, rounds=2, every=3)
    plugin = SimpleNamespace(forward_context=contextlib.nullcontext)
    trainer = SimpleNamespace(current_epoch=0, precision_plugin=plugin)
    chosen, before = [], torch.get_num_threads()
    try:
        for epoch in range(7):
            trainer.current_epoch = epoch
            slow["count"] = 2 if epoch < 3 else 1
            timing.on_train_epoch_start(trainer, module)
            for i in range(8):
                timing.on_train_batch_start(trainer, module, batch, i)
                timing.on_train_batch_end(trainer, module, None, batch, i)
            chosen.append(torch.get_num_threads())
    finally:
        torch.set_num_threads(before)
    assert chosen == [1, 1, 1, 2, 2, 2, 2]
    assert timing.timings == 3  # at epochs 0, 3 and 6


def test_the_classifier_trains_at_its_fastest_thread_count_with_the_same_numbers(
    tmp_path: Path,
) -> None:
    """With 2 threads allowed it times 1 and 2 in its first batches. Where the check finds the
    numbers the same at both, whichever it keeps trains the same weights as 1 thread fixed;
    where not, it keeps 2."""
    import torch

    cfg, prepared, _, inputs = _tiny_job("classifier.batch_size=8", "classifier.max_epochs=3")
    data, split = prepared.data, prepared.split
    device = resolve_device("cpu")
    before = torch.get_num_threads()

    def train(threads: int, folder: str):
        cfg.classifier.threads = threads
        net, facts = fit_classifier(cfg.classifier, inputs, data, split, device, tmp_path / folder)
        return [p.detach().clone() for p in net.parameters()], facts

    one, facts_one = train(1, "one")
    timed, facts = train(2, "timed")
    assert torch.get_num_threads() == before  # the job's count is back
    assert facts_one["train_threads"] == 1
    probe = SignRNN(data.n_channels, len(data.class_names), hidden_size=16)
    x, y = torch.from_numpy(inputs[split.train[:8]]), torch.from_numpy(data.labels[split.train[:8]])
    # checked as training computes: under bfloat16 autocast where classifier.precision picks it
    bf16 = classifier_precision(cfg.classifier.precision, device) == "bf16-mixed"
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        same = same_at_thread_counts(probe, x, y, [2, 1])
    if same:
        assert facts["train_threads"] in (1, 2)
        assert all(torch.equal(a, b) for a, b in zip(one, timed, strict=True))
    else:
        assert facts["train_threads"] == 2


def test_classifier_precision_reaches_the_training(tmp_path: Path) -> None:
    """classifier.precision=bf16 trains under bfloat16 autocast (oneDNN's bfloat16 LSTM on a
    CPU): the same seed ends at other weights than in float32, and both still learn."""
    try:
        classifier_precision("bf16", resolve_device("cpu"))
    except ConfigError as exc:
        pytest.skip(str(exc))
    weights, losses = {}, {}
    for precision in ("32", "bf16"):
        cfg, prepared, _, inputs = _tiny_job(
            f"classifier.precision={precision}", "classifier.threads=1"
        )
        data, split = prepared.data, prepared.split
        device = resolve_device("cpu")
        net, _ = fit_classifier(cfg.classifier, inputs, data, split, device, tmp_path / precision)
        weights[precision] = torch.cat([p.detach().flatten() for p in net.parameters()])
        _, probs = extract_activations(net, inputs, device=device.torch)
        losses[precision] = evaluation_metrics(data.labels, probs.argmax(1), probs, split)
    assert not torch.equal(weights["32"], weights["bf16"])
    # bfloat16 keeps ~3 significant digits: a step's rounding, not another training
    assert (weights["32"] - weights["bf16"]).abs().max() < 0.05
    assert losses["bf16"]["train_loss"] == pytest.approx(losses["32"]["train_loss"], rel=0.05)


def test_bf16_where_the_cell_cannot_run_in_it(monkeypatch) -> None:
    """Where oneDNN (or cuDNN) has no bfloat16 RNN, bf16 asked for is a one-line error that names
    the setting, and auto quietly trains in float32."""
    import lstmpaths.classifier as classifier

    def no_bf16(self, *args, **kwargs):
        if torch.is_autocast_enabled("cpu"):
            raise RuntimeError("could not create a primitive descriptor for the LSTM forward")
        return original(self, *args, **kwargs)

    original = torch.nn.LSTM.forward
    monkeypatch.setattr(torch.nn.LSTM, "forward", no_bf16)
    classifier._bf16_problem.cache_clear()
    cpu = resolve_device("cpu")
    try:
        with pytest.raises(ConfigError, match=r"classifier.precision=bf16: .* LSTM .*primitive"):
            classifier_precision("bf16", cpu)
        assert classifier_precision("auto", cpu) == "32-true"
        assert classifier_precision("32", cpu) == "32-true"
    finally:
        classifier._bf16_problem.cache_clear()


def test_the_bf16_probe_draws_no_random_number_of_the_training() -> None:
    """The probe builds a tiny RNN: its weights come from a forked generator, so whether it ran
    before in this process cannot change a classifier's training."""
    import lstmpaths.classifier as classifier

    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    classifier._bf16_problem.cache_clear()
    classifier._bf16_problem("cpu", "lstm")
    assert torch.equal(torch.rand(3), expected)
