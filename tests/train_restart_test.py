"""A workdir whose checkpoints cannot be read is never started over silently.

The training job refuses it, naming the files and how to start over on
purpose; `--config.restart=true` (config.restart) then trains from epoch
0 and keeps the old files aside.
"""

import os

import pytest
from train_lib_test import _EpochRecorder

from localgrad import train_lib
from localgrad.callbacks import NoIntactCheckpointError
from localgrad.configs import load


def _config():
    config = load("tiny")
    config.num_blocks = 2
    config.steps_per_epoch = 3  # Seconds on digits.
    return config


def test_unreadable_checkpoints_are_refused_then_restarted_on_purpose(
    tmp_path,
):
    workdir = str(tmp_path)
    train_lib.train_and_evaluate(_config(), workdir)
    checkpoints = os.path.join(workdir, "checkpoints")
    for name in os.listdir(checkpoints):  # A passing I/O error, say.
        with open(os.path.join(checkpoints, name), "r+b") as file:
            file.truncate(50)
    damaged = {
        name + ".damaged": open(os.path.join(checkpoints, name), "rb").read()
        for name in os.listdir(checkpoints)
    }

    with pytest.raises(NoIntactCheckpointError, match="--config.restart"):
        train_lib.train_and_evaluate(_config(), workdir)
    assert sorted(os.listdir(checkpoints)) == sorted(damaged)
    assert not os.path.exists(os.path.join(workdir, "model.keras.partial"))

    config = _config()
    config.restart = True
    recorder = _EpochRecorder()
    metrics = train_lib.train_and_evaluate(
        config, workdir, callbacks=[recorder]
    )
    assert recorder.epochs == [0, 1]
    assert [record["epoch"] for record in metrics["history"]] == [0, 1]
    (aside,) = [n for n in os.listdir(checkpoints) if n.startswith("replaced")]
    kept = os.path.join(checkpoints, aside)
    assert {
        name: open(os.path.join(kept, name), "rb").read()
        for name in os.listdir(kept)
    } == damaged
    assert sorted(set(os.listdir(checkpoints)) - {aside}) == [
        "epoch-0001.npz",
        "epoch-0002.npz",
    ]
