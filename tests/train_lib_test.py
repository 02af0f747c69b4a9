"""Tests of localgrad.train_lib on the tiny config (digits, thin VGG-11)."""

import glob
import importlib.util
import json
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf
from tiny_decoupling import write_tiny_decoupling

import localgrad
from localgrad import train_config, train_lib
from localgrad.configs import DIRECTORY as CONFIGS


def _load_config_module(path):
    spec = importlib.util.spec_from_file_location("config_module", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tiny_config():
    return _load_config_module(os.path.join(CONFIGS, "tiny.py")).get_config()


def _mlp_config():
    """The tiny config on a 4-unit MLP: for tests that need no convolutions
    (it is traced in a third of the VGG's time)."""
    config = _tiny_config()
    config.model = "mlp"
    config.width = 0.0625  # 4 hidden layers of 64, each with batch norm.
    config.heads = "linear"
    return config


class _Interrupt(Exception):
    pass


class _InterruptAfterFirstEpoch(keras.callbacks.Callback):
    """Stands for a kill after the first checkpoint was written."""

    def on_epoch_end(self, epoch, logs=None):
        raise _Interrupt()


class _EpochRecorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """Two uninterrupted epochs of the tiny config."""
    workdir = str(tmp_path_factory.mktemp("full"))
    config = _tiny_config()
    metrics = train_lib.train_and_evaluate(config, workdir)
    return workdir, config, metrics


def _tags(directory):
    tags = set()
    for path in glob.glob(os.path.join(directory, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    return tags


def test_writes_every_artefact(full_run):
    workdir, config, metrics = full_run
    with open(os.path.join(workdir, "config.json")) as file:
        assert json.load(file) == json.loads(json.dumps(config.to_dict()))
    checkpoints = sorted(os.listdir(os.path.join(workdir, "checkpoints")))
    assert checkpoints == ["epoch-0001.npz", "epoch-0002.npz"]
    with open(os.path.join(workdir, "accuracy_by_block.png"), "rb") as file:
        assert file.read(8) == b"\x89PNG\r\n\x1a\n"
    tags = _tags(os.path.join(workdir, "tensorboard", "train"))
    for block in range(3):  # Keras' per-block scalars, and ours.
        assert f"epoch_block_{block}_loss" in tags
        assert f"epoch_block_{block}_accuracy" in tags
        assert f"epoch_block_{block}_learning_rate" in tags
    assert "epoch_examples_per_second" in tags
    with open(os.path.join(workdir, "metrics.json")) as file:
        assert json.load(file) == json.loads(json.dumps(metrics))
    assert [record["epoch"] for record in metrics["history"]] == [0, 1]
    assert metrics["examples_per_second"] > 0
    assert metrics["wall_time_seconds"] >= metrics["train_seconds"] > 0
    # 1,437 digits in whole batches of 64.
    assert metrics["steps_per_epoch"] == 1437 // 64


def test_metrics_match_the_saved_model(full_run):
    workdir, config, metrics = full_run
    model = keras.saving.load_model(os.path.join(workdir, "model.keras"))
    test = localgrad.data.load("digits", "test", batch_size=512)
    results = model.evaluate(test, return_dict=True, verbose=0)
    heads = metrics["heads"]
    assert [head["depth"] for head in heads] == [3, 5, 8]
    assert [head["head"] for head in heads] == [
        "mlp_sr",
        "mlp_sr",
        "classifier",
    ]
    for block, head in enumerate(heads):
        assert head["test_accuracy"] == pytest.approx(
            results[f"block_{block}_accuracy"], abs=1e-6
        )
    assert metrics["test_accuracy"] == pytest.approx(
        results["accuracy"], abs=1e-6
    )
    assert metrics["test_accuracy"] > 0.3  # Learned something (chance 0.1).


def test_resume_continues_exactly(full_run, tmp_path):
    full_dir, config, _ = full_run
    workdir = str(tmp_path)
    with pytest.raises(_Interrupt):
        train_lib.train_and_evaluate(
            config, workdir, callbacks=[_InterruptAfterFirstEpoch()]
        )
    assert os.listdir(os.path.join(workdir, "checkpoints")) == [
        "epoch-0001.npz"
    ]
    assert not os.path.exists(os.path.join(workdir, "model.keras"))
    recorder = _EpochRecorder()
    metrics = train_lib.train_and_evaluate(
        config, workdir, callbacks=[recorder]
    )
    assert recorder.epochs == [1]  # Only the missing epoch ran.
    assert [record["epoch"] for record in metrics["history"]] == [0, 1]
    last = np.load(os.path.join(workdir, "checkpoints", "epoch-0002.npz"))
    steps = metrics["steps_per_epoch"]
    for group in ("optimizer_0", "optimizer_1", "optimizer_2", "optimizer_3"):
        assert int(last[f"{group}/iteration"]) == 2 * steps
    # Same seed and the same data order: the same weights as in one go.
    resumed = keras.saving.load_model(os.path.join(workdir, "model.keras"))
    whole = keras.saving.load_model(os.path.join(full_dir, "model.keras"))
    for a, b in zip(whole.weights, resumed.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # A finished run started again trains nothing and reports the same.
    again = _EpochRecorder()
    repeated = train_lib.train_and_evaluate(config, workdir, callbacks=[again])
    assert again.epochs == []
    assert repeated["test_accuracy"] == metrics["test_accuracy"]
    assert repeated["history"] == metrics["history"]


def test_resume_refuses_a_changed_config(full_run):
    workdir, config, _ = full_run
    changed = _tiny_config()
    changed.learning_rate = 0.5
    with pytest.raises(ValueError, match="learning_rate"):
        train_lib.train_and_evaluate(changed, workdir)


def test_damaged_newest_checkpoint_resumes_from_the_older(full_run, tmp_path):
    # Issue 8: a finished run whose newest checkpoint was overwritten with
    # 100 random bytes, started again, used to die in numpy's unpickler.
    full_dir, config, metrics = full_run
    workdir = str(tmp_path / "run")
    shutil.copytree(full_dir, workdir)
    newest = os.path.join(workdir, "checkpoints", "epoch-0002.npz")
    garbage = np.random.default_rng(0).bytes(100)
    with open(newest, "wb") as file:
        file.write(garbage)
    recorder = _EpochRecorder()
    repeated = train_lib.train_and_evaluate(
        config, workdir, callbacks=[recorder]
    )
    assert recorder.epochs == [1]  # Epoch 2 trained again from epoch 1.
    assert [record["epoch"] for record in repeated["history"]] == [0, 1]
    with open(newest + ".damaged", "rb") as file:
        assert file.read() == garbage  # The user's file is kept.
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == [
        "epoch-0001.npz",
        "epoch-0002.npz",
        "epoch-0002.npz.damaged",
    ]
    # Same data order and state: the same result as the undamaged run.
    assert repeated["test_accuracy"] == metrics["test_accuracy"]


def test_more_epochs_continue_a_finished_run(full_run, tmp_path):
    full_dir, config, _ = full_run
    workdir = str(tmp_path / "run")
    shutil.copytree(full_dir, workdir)
    longer = _tiny_config()
    longer.epochs = 3
    recorder = _EpochRecorder()
    metrics = train_lib.train_and_evaluate(
        longer, workdir, callbacks=[recorder]
    )
    assert recorder.epochs == [2]
    assert [record["epoch"] for record in metrics["history"]] == [0, 1, 2]
    with open(os.path.join(workdir, "config.json")) as file:
        assert json.load(file)["epochs"] == 3
    shorter = _tiny_config()
    shorter.epochs = 1
    with pytest.raises(ValueError, match="3 finished epochs, more than"):
        train_lib.train_and_evaluate(shorter, workdir)


def test_predsim_sequential_with_label_smoothing(tmp_path):
    config = _tiny_config()
    config.method = "predsim"
    config.boundaries = (1, 3)  # PredSim heads need maps of 2x2 or more.
    config.schedule = "sequential"
    config.e1, config.e2 = 0.5, 0.5  # Blocks train 0.5, 1 and 1.5 epochs.
    config.epochs = 3
    config.label_smoothing = 0.1
    config.steps_per_epoch = 6
    config.validation_fraction = 0.1
    metrics = train_lib.train_and_evaluate(config, str(tmp_path))
    assert [head["head"] for head in metrics["heads"]] == [
        "predsim",
        "predsim",
        "classifier",
    ]
    assert metrics["boundaries"] == [1, 3]
    history = metrics["history"]
    assert "val_accuracy" in history[0]
    # 3, 6 and 9 steps: after epoch 0 (6 steps) block 0 is done, block 1
    # is half-way through its own cosine schedule, block 2 not started.
    rates = _block_learning_rates(str(tmp_path / "tensorboard" / "train"))
    np.testing.assert_allclose(
        rates,
        [0.0, config.learning_rate / 2, config.learning_rate],
        atol=1e-7,
    )


def test_step_schedule_with_a_factor_per_decay(tmp_path):
    config = _mlp_config()
    config.epochs, config.steps_per_epoch = 3, 2
    config.lr_schedule = "step"
    config.lr_decay_epochs = (1, 2)  # Steps 2 and 4.
    config.lr_decay_factors = (0.1, 0.5)
    train_lib.train_and_evaluate(config, str(tmp_path))
    directory = str(tmp_path / "tensorboard" / "train")
    rates = [_block_learning_rates(directory, epoch)[0] for epoch in range(3)]
    lr = config.learning_rate
    np.testing.assert_allclose(rates, [lr, 0.1 * lr, 0.05 * lr], rtol=1e-5)


def _block_learning_rates(directory, epoch=0):
    rates = {}
    for path in glob.glob(os.path.join(directory, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag.endswith("_learning_rate") and (
                    event.step == epoch and value.tag.startswith("epoch_block")
                ):
                    block = int(value.tag.split("_")[2])
                    rates[block] = float(tf.make_ndarray(value.tensor))
    return [rates[block] for block in sorted(rates)]


def test_decoupling_file_sets_boundaries_heads_and_width(tmp_path):
    path = str(tmp_path / "decoupling.json")
    write_tiny_decoupling(path, search={"head_width": 0.5})
    config = _tiny_config()
    config.decoupling = path
    config.epochs = 1
    config.steps_per_epoch = 2
    metrics = train_lib.train_and_evaluate(config, str(tmp_path / "run"))
    assert metrics["boundaries"] == [1, 4]
    assert [head["head"] for head in metrics["heads"]] == [
        "linear",
        "linear",
        "classifier",
    ]
    # Issue 12: the heads are built at the searched width, not at 1.0 ...
    model = keras.saving.load_model(str(tmp_path / "run" / "model.keras"))
    assert model.head_width == 0.5
    # ... unless the config sets a width itself.
    config.head_width = 0.25
    train_lib.train_and_evaluate(config, str(tmp_path / "explicit"))
    explicit = str(tmp_path / "explicit" / "model.keras")
    assert keras.saving.load_model(explicit).head_width == 0.25


def test_head_width_must_be_positive(tmp_path):
    config = _tiny_config()
    config.head_width = 0.0
    with pytest.raises(ValueError, match="head_width must be > 0"):
        train_lib.train_and_evaluate(config, str(tmp_path))


def test_precise_bn_batches_reestimates_before_each_validation(
    tmp_path, monkeypatch
):
    from localgrad.callbacks import precise_batch_norm

    calls = []
    recompute = precise_batch_norm.PreciseBatchNorm.recompute

    def recording(self, model=None):
        examples = recompute(self, model)
        calls.append((self.num_batches, examples))
        return examples

    monkeypatch.setattr(
        precise_batch_norm.PreciseBatchNorm, "recompute", recording
    )
    config = _mlp_config()
    config.precise_bn_batches = 3
    config.validation_fraction = 0.1
    config.steps_per_epoch = 2
    train_lib.train_and_evaluate(config, str(tmp_path))
    # Before each of the 2 validations; the end of training (same weights
    # as at the last validation) needs no new estimate. On 2 batches, not
    # 3: no more than an epoch trains on.
    assert calls == [(2, 2 * config.batch_size)] * 2
    config.precise_bn_batches = -1
    with pytest.raises(ValueError, match="precise_bn_batches"):
        train_lib.train_and_evaluate(config, str(tmp_path / "bad"))


def test_missing_data_fail_before_any_model_is_built(tmp_path, monkeypatch):
    def must_not_build(*args, **kwargs):
        raise AssertionError("the model was built before the data loaded")

    monkeypatch.setattr(localgrad.models, "build", must_not_build)
    config = _tiny_config()
    config.dataset = "mnist"
    config.data_dir = str(tmp_path / "no_such_directory")
    with pytest.raises(FileNotFoundError, match="mnist"):
        train_lib.train_and_evaluate(config, str(tmp_path / "run"))


def test_bad_config_is_a_clear_value_error(tmp_path):
    config = _tiny_config()
    config.schedule = "zigzag"
    with pytest.raises(ValueError, match="Unknown schedule 'zigzag'"):
        train_lib.train_and_evaluate(config, str(tmp_path))
    assert not os.path.exists(os.path.join(tmp_path, "config.json"))


class _ExecutionRecorder(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        self.execution = self.model.execution
        self.devices = self.model.devices


def test_pipelined_schedule_on_devices(tmp_path):
    config = _mlp_config()
    config.schedule = "pipelined"
    config.devices = ("/cpu:1", "/cpu:2")
    config.steps_per_epoch = 4
    recorder = _ExecutionRecorder()
    metrics = train_lib.train_and_evaluate(
        config, str(tmp_path), callbacks=[recorder]
    )
    assert recorder.execution == "pipelined"
    assert recorder.devices == [
        "/device:CPU:1",
        "/device:CPU:1",
        "/device:CPU:2",
    ]
    assert metrics["config"]["devices"] == ["/cpu:1", "/cpu:2"]
    assert set(metrics["history"][-1]) >= {"block_0_loss", "block_2_loss"}
    assert 0.0 <= metrics["test_accuracy"] <= 1.0


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("devices", ("cpu0",), "must be a list of device names"),
        ("schedule", "pipelined_sequential", "Unknown schedule"),
    ],
)
def test_bad_placement_fields_are_refused(tmp_path, field, value, message):
    config = _tiny_config()
    config[field] = value
    with pytest.raises(ValueError, match=message):
        train_lib.train_and_evaluate(config, str(tmp_path))


def test_a_device_that_does_not_exist_is_named(tmp_path):
    config = _tiny_config()
    config.devices = ("/cpu:0", "/gpu:3")
    with pytest.raises(ValueError, match="'/gpu:3' does not exist"):
        train_lib.train_and_evaluate(config, str(tmp_path))


PAPER_VARIANTS = ("backprop", "dgl_k2", "dgl_k4", "predsim_k2", "predsim_k4")


@pytest.mark.parametrize(
    "name, variants",
    [
        ("tiny.py", (None,)),
        ("quickstart.py", (None,)),
        ("fashion_mnist.py", ("backprop", "dgl", "predsim")),
        ("paper/cifar10_vgg19.py", PAPER_VARIANTS),
        ("paper/cifar10_resnet50.py", PAPER_VARIANTS),
        ("paper/cifar10_resnet101.py", PAPER_VARIANTS),
        ("paper/cifar10_resnet152.py", PAPER_VARIANTS),
        ("paper/tiny_imagenet_resnet101.py", PAPER_VARIANTS),
        ("paper/tiny_imagenet_resnet152.py", PAPER_VARIANTS),
        ("paper/imagenet_resnet101.py", PAPER_VARIANTS),
        ("paper/imagenet_resnet152.py", PAPER_VARIANTS),
    ],
)
def test_every_config_is_valid(name, variants):
    module = _load_config_module(os.path.join(CONFIGS, name))
    doc = " ".join(module.__doc__.split())
    assert f"localgrad-train --config={name[: -len('.py')]}" in doc

    def get(variant):
        return module.get_config(*([] if variant is None else [variant]))

    base = get(variants[0])
    methods = set()
    for variant in variants:
        config = get(variant)
        train_config.check_config(config)
        assert config.model in localgrad.models.MODEL_NAMES
        assert config.dataset in localgrad.data.DATASET_NAMES
        methods.add((config.method, config.num_blocks))
        # Variants of one module differ only in method and blocks.
        differing = {key for key in config.keys() if config[key] != base[key]}
        assert differing <= {"method", "num_blocks"}
    assert len(methods) == len(variants)
