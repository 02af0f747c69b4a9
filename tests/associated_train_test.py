"""Associated Learning through localgrad.train_lib (tiny digits runs)."""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from tiny_decoupling import write_tiny_decoupling

import localgrad
from localgrad import train_config, train_lib
from localgrad.configs import DIRECTORY as CONFIGS

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))


def _config(epochs=2):
    config = train_config.default_config()
    config.dataset = "digits"
    config.model = "mlp"
    config.width = 0.0625  # 4 hidden layers of 64.
    config.method = "associated"
    config.num_blocks = 4
    config.label_width = 32
    config.optimizer = "adam"
    config.learning_rate = 1e-2
    config.weight_decay = 0.0
    config.lr_schedule = "constant"
    config.batch_size = 64
    config.eval_batch_size = 512
    config.steps_per_epoch = 6  # Enough to tell a resumed run apart.
    config.epochs = epochs
    config.precise_bn_batches = 2  # Not the default 50: 6 steps an epoch.
    return config


def test_associated_run_writes_per_block_losses_and_resumes(tmp_path):
    metrics = train_lib.train_and_evaluate(_config(), str(tmp_path / "full"))
    assert [h["head"] for h in metrics["heads"]] == ["bridge"] * 4
    for block in range(4):
        for term in ("associated_loss", "autoencoder_loss"):
            assert f"block_{block}_{term}" in metrics["test"]
            assert f"block_{block}_{term}" in metrics["history"][-1]
    assert os.path.exists(tmp_path / "full" / "accuracy_by_block.png")
    model = localgrad.export.load_trained_model(str(tmp_path / "full"))
    assert isinstance(model, localgrad.AssociatedModel)

    # One epoch, then resumed for the second: the same model.
    resumed = str(tmp_path / "resumed")
    train_lib.train_and_evaluate(_config(epochs=1), resumed)
    with open(os.path.join(resumed, "config.json")) as file:
        saved = json.load(file)
    saved["epochs"] = 2
    with open(os.path.join(resumed, "config.json"), "w") as file:
        json.dump(saved, file)
    again = train_lib.train_and_evaluate(_config(), resumed)
    assert again["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
    twin = localgrad.export.load_trained_model(resumed)
    for ours, theirs in zip(model.weights, twin.weights):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=1e-5)


def test_binary_cuts_the_components_at_a_decoupling_file(tmp_path):
    path = str(tmp_path / "decoupling.json")
    write_tiny_decoupling(path)
    workdir = tmp_path / "run"
    run = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "bin", "train.py"),
            "--config=tiny",
            f"--workdir={workdir}",
            "--config.method=associated",
            "--config.label_width=16",
            "--config.optimizer=adam",
            "--config.learning_rate=0.001",
            "--config.weight_decay=0",
            f"--config.decoupling={path}",
            "--config.epochs=1",
            "--config.steps_per_epoch=2",
        ],
        cwd=str(tmp_path),
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    with open(workdir / "metrics.json") as file:
        metrics = json.load(file)
    assert metrics["boundaries"] == [1, 4]  # Not tiny.py's even [3, 5].
    assert [head["head"] for head in metrics["heads"]] == ["bridge"] * 3
    model = localgrad.export.load_trained_model(str(workdir))
    assert isinstance(model, localgrad.AssociatedModel)
    assert model.block_ranges == [(0, 1), (1, 4), (4, 8)]


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(label_width=None), "needs label_width"),
        (dict(label_width=0), "label_width must be a positive integer"),
        (dict(heads="mlp"), "leave heads"),
        (dict(head_width=0.5), "head_width unset"),
        (dict(decoupling="/tmp/d.json", boundaries=(1, 2, 3)), "boundaries"),
        (dict(schedule="sequential"), "every component on every batch"),
        (dict(decoder_learning_rate_factor=0.0), "must be > 0"),
        (dict(method="dgl"), "label_width is for method='associated'"),
    ],
)
def test_bad_associated_configs(changes, message):
    config = _config()
    config.update(changes)
    with pytest.raises(ValueError, match=message):
        train_config.check_config(config)


@pytest.mark.parametrize(
    "name, variants",
    [
        (
            "fashion_mnist_associated.py",
            ("vgg11", "mlp", "vgg11_backprop", "mlp_dgl"),
        ),
        ("paper/mnist_mlp_associated.py", ("associated", "backprop")),
    ],
)
def test_associated_configs_are_valid(name, variants):
    spec = importlib.util.spec_from_file_location(
        "config_module", os.path.join(CONFIGS, name)
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for variant in variants:
        config = module.get_config(variant)
        train_config.check_config(config)
    assert module.get_config().method == "associated"


@pytest.mark.parametrize("network", ["vgg11", "mlp"])
def test_fashion_mnist_variants_differ_only_in_method(network):
    spec = importlib.util.spec_from_file_location(
        "config_module", os.path.join(CONFIGS, "fashion_mnist_associated.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    associated = module.get_config(network)
    methods = {"associated": associated.num_blocks}
    for suffix in ("_backprop", "_dgl"):
        other = module.get_config(network + suffix)
        methods[other.method] = other.num_blocks
        differing = {
            key for key in associated.keys() if associated[key] != other[key]
        }
        assert differing <= {"method", "num_blocks", "label_width", "heads"}
    assert methods == {"associated": 4, "backprop": 1, "dgl": 4}
