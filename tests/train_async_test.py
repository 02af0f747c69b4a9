"""schedule=async in the training config and on the bin/train.py line."""

import glob
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from localgrad import train_config, train_lib
from localgrad.callbacks import EpochCheckpoint

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))


def _async_config(**fields):
    config = train_config.default_config()
    config.schedule = "async"
    for name, value in fields.items():
        config[name] = value
    return config


def test_async_fields_are_checked():
    train_config.check_config(
        _async_config(
            buffer_size=5, sampling="fifo", max_reuse=3, slowdown="3:1.11"
        )
    )


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"buffer_size": 0}, "buffer_size must be a positive integer"),
        ({"sampling": "lifo"}, "Unknown sampling 'lifo'"),
        ({"max_reuse": 0}, "max_reuse must be None"),
        ({"slowdown": "4:1.11"}, "names block 4, but the model has 4"),
        ({"slowdown": "3:0"}, "finite number > 0"),
        ({"slowdown": "3:-1"}, "finite number > 0"),
        ({"slowdown": "three"}, "write block:factor pairs"),
    ],
)
def test_bad_async_fields_are_clear_value_errors(fields, message):
    with pytest.raises(ValueError, match=message):
        train_config.check_config(_async_config(**fields))


def test_async_fields_need_the_async_schedule():
    config = train_config.default_config()
    config.buffer_size = 5
    with pytest.raises(ValueError, match="are for schedule='async'"):
        train_config.check_config(config)


def test_the_binary_trains_asynchronously(tmp_path):
    workdir = tmp_path / "run"
    command = [
        sys.executable,
        os.path.join(ROOT, "bin", "train.py"),
        "--config=tiny",
        f"--workdir={workdir}",
        # The MLP, traced faster than the tiny VGG: the schedule on the
        # command line is what is tested, not the network.
        "--config.model=mlp",
        "--config.heads=mlp",
        "--config.schedule=async",
        "--config.buffer_size=4",
        "--config.sampling=priority_lifo",
        "--config.max_reuse=8",
        "--config.slowdown=1:1.11",
    ]
    run = subprocess.run(
        command,
        cwd=str(tmp_path),
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    with open(workdir / "metrics.json") as file:
        metrics = json.load(file)
    last = metrics["history"][-1]
    # The tiny config: 2 epochs for every block, 3 blocks.
    for block in range(3):
        assert last[f"block_{block}_epochs"] == pytest.approx(2.0)
    assert "block_1_skips" in last and "buffer_2_available" in last
    assert metrics["config"]["slowdown"] == "1:1.11"
    assert "GreedySchedule (async): epochs per block" in run.stdout
    tags = set()
    for path in glob.glob(str(workdir / "tensorboard" / "train" / "*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    assert {"epoch_block_2_epochs", "epoch_block_1_skips"} <= tags, tags
    assert "epoch_buffer_1_filled" in tags


class _Interrupt(Exception):
    pass


class _InterruptAfterFirstEpoch(keras.callbacks.Callback):
    """Stands for a kill after the first checkpoint was written."""

    def on_epoch_end(self, epoch, logs=None):
        raise _Interrupt()


def test_an_interrupted_async_run_resumes_its_order(tmp_path):
    config = train_config.default_config()
    config.update(
        dataset="digits",
        model="mlp",
        width=0.125,
        num_blocks=3,
        heads="linear",
        batch_size=128,
        epochs=2,
        schedule="async",
        buffer_size=3,
        lr_schedule="step",
        lr_decay_epochs=(1,),
        precise_bn_batches=2,  # Not the default 50: 11 steps an epoch.
    )
    workdir = str(tmp_path / "run")
    with pytest.raises(_Interrupt):
        train_lib.train_and_evaluate(
            config, workdir, callbacks=[_InterruptAfterFirstEpoch()]
        )
    checkpoints = EpochCheckpoint(os.path.join(workdir, "checkpoints"))
    (saved,) = checkpoints.checkpoints()
    with np.load(saved) as stored:
        meta = json.loads(str(stored["meta"]))
    order = json.loads(meta["schedule_state"])["order"]
    assert order["ticks"] > 0

    metrics = train_lib.train_and_evaluate(config, workdir)
    history = metrics["history"]
    assert history[0]["epoch"] == 0 and history[-1]["epoch"] >= 1
    for block in range(3):  # every block's own 2 epochs, across the kill
        assert history[-1][f"block_{block}_epochs"] == pytest.approx(2.0)
    assert metrics["test_accuracy"] > 0.3
