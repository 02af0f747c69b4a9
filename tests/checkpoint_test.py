"""Tests of localgrad.callbacks.EpochCheckpoint."""

import json
import os
import shutil

import keras
import numpy as np
import pytest

import localgrad
from localgrad.callbacks import EpochCheckpoint, NoIntactCheckpointError


def _model(width=0.125):
    network = localgrad.models.build("vgg11", (8, 8, 1), 10, width=width)
    model = localgrad.GreedyModel(network, num_blocks=2, heads="mlp_sr")
    model.compile(
        optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(48, 8, 8, 1)).astype("float32"), rng.integers(
        0, 10, 48
    )


def _values(variables):
    return [v.numpy() for v in variables]


class _Snapshots(keras.callbacks.Callback):
    """Copies the checkpoint directory after every epoch's checkpoint."""

    def __init__(self, directory, into):
        super().__init__()
        self.directory = directory
        self.into = into

    def on_epoch_end(self, epoch, logs=None):
        shutil.copytree(self.directory, self.into / f"after-{epoch + 1}")


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """One 3-epoch fit whose checkpoint directory is kept after each epoch.

    Every test reads a copy of the directory as a 1-, 2- or 3-epoch fit
    would have left it, so the module fits (and traces) once.
    """
    root = tmp_path_factory.mktemp("fitted")
    x, y = _data()
    trained = _model()
    checkpoint = EpochCheckpoint(str(root / "run"), max_to_keep=2)
    trained.fit(
        x,
        y,
        batch_size=16,
        epochs=3,
        verbose=0,
        callbacks=[checkpoint, _Snapshots(str(root / "run"), root)],
    )
    return trained, checkpoint, root


def _checkpoints_after(fitted, epochs, directory):
    """`directory` as a fit of `epochs` epochs would have left it."""
    shutil.copytree(
        fitted[2] / f"after-{epochs}", directory, dirs_exist_ok=True
    )
    return str(directory)


def test_restore_brings_back_the_whole_training_state(fitted, tmp_path):
    trained, checkpoint, _ = fitted
    directory = _checkpoints_after(fitted, 3, tmp_path)
    names = [p.rsplit("/", 1)[-1] for p in checkpoint.checkpoints()]
    assert names == ["epoch-0002.npz", "epoch-0003.npz"]  # Older pruned.

    fresh = _model()
    resumed = EpochCheckpoint(directory)
    assert resumed.restore(fresh) == 3
    assert [record["epoch"] for record in resumed.history] == [0, 1, 2]
    assert resumed.history[-1]["loss"] == pytest.approx(
        checkpoint.history[-1]["loss"]
    )
    # Weights, BatchNorm statistics and every optimizer's state.
    moving = [v for v in fresh.weights if "moving_mean" in v.path]
    assert moving and all(np.any(value != 0) for value in _values(moving))
    for a, b in zip(_values(trained.weights), _values(fresh.weights)):
        np.testing.assert_array_equal(a, b)
    assert int(fresh.optimizer.iterations) == 9  # The global step.
    for before, after in zip(trained.block_optimizers, fresh.block_optimizers):
        assert int(after.iterations) == 9
        for a, b in zip(_values(before.variables), _values(after.variables)):
            np.testing.assert_array_equal(a, b)


def test_no_checkpoint_means_epoch_zero(tmp_path):
    checkpoint = EpochCheckpoint(str(tmp_path / "none"))
    assert checkpoint.restore(_model()) == 0
    assert checkpoint.history == []


def test_restore_refuses_another_model(fitted, tmp_path):
    directory = _checkpoints_after(fitted, 1, tmp_path)
    with pytest.raises(ValueError, match="different model"):
        EpochCheckpoint(directory).restore(_model(width=0.25))


def test_max_to_keep_must_be_positive():
    with pytest.raises(ValueError, match="max_to_keep"):
        EpochCheckpoint("/tmp/unused", max_to_keep=0)


def test_damaged_newest_checkpoint_falls_back_and_is_kept(
    fitted, tmp_path, caplog
):
    _checkpoints_after(fitted, 3, tmp_path)
    newest = tmp_path / "epoch-0003.npz"
    garbage = np.random.default_rng(1).bytes(100)
    newest.write_bytes(garbage)
    older = localgrad.checkpoint_files.read_arrays(
        str(tmp_path / "epoch-0002.npz")
    )[0]

    fresh = _model()
    checkpoint = EpochCheckpoint(str(tmp_path))
    with caplog.at_level("WARNING"):
        assert checkpoint.restore(fresh) == 2
    assert [record["epoch"] for record in checkpoint.history] == [0, 1]
    for i, variable in enumerate(fresh.weights):
        np.testing.assert_array_equal(variable.numpy(), older[f"model/{i}"])
    # The damaged file is kept, renamed, and no longer counts.
    aside = tmp_path / "epoch-0003.npz.damaged"
    assert aside.read_bytes() == garbage
    assert checkpoint.damaged == [str(aside)]
    assert [p.rsplit("/", 1)[-1] for p in checkpoint.checkpoints()] == [
        "epoch-0002.npz"
    ]
    messages = caplog.text
    assert "Damaged checkpoint: " + str(newest) in messages
    assert "is not an .npz archive" in messages
    assert "Kept it as " + str(aside) in messages
    assert "Resuming from the intact checkpoint" in messages
    assert "epoch-0002.npz" in messages


def test_every_checkpoint_damaged_is_refused_not_started_over(fitted, tmp_path):
    _checkpoints_after(fitted, 2, tmp_path)
    for name in ("epoch-0001.npz", "epoch-0002.npz"):
        path = tmp_path / name
        path.write_bytes(path.read_bytes()[:50])  # Truncated.
    (tmp_path / "epoch-0002.npz.damaged").write_bytes(b"an earlier one")
    checkpoint = EpochCheckpoint(str(tmp_path))
    with pytest.raises(NoIntactCheckpointError) as refused:
        checkpoint.restore(_model())
    message = str(refused.value)
    assert "epoch-0002.npz.damaged-1, epoch-0001.npz.damaged" in message
    assert "start_over=True" in message and "--config.restart=true" in message
    assert sorted(os.listdir(tmp_path)) == [
        "epoch-0001.npz.damaged",
        "epoch-0002.npz.damaged",
        "epoch-0002.npz.damaged-1",
    ]
    assert (tmp_path / "epoch-0002.npz.damaged").read_bytes() == (
        b"an earlier one"
    )


def test_start_over_sets_every_checkpoint_aside(fitted, tmp_path):
    _checkpoints_after(fitted, 2, tmp_path)
    (tmp_path / "epoch-0001.npz.damaged").write_bytes(b"damaged")
    before = {
        name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)
    }
    checkpoint = EpochCheckpoint(str(tmp_path))
    assert checkpoint.restore(_model(), start_over=True) == 0
    assert checkpoint.history == [] and checkpoint.checkpoints() == []
    (aside,) = os.listdir(tmp_path)
    assert aside.startswith("replaced-")
    assert {
        name: (tmp_path / aside / name).read_bytes()
        for name in os.listdir(tmp_path / aside)
    } == before


def test_saved_checkpoints_carry_a_manifest(fitted, tmp_path):
    _checkpoints_after(fitted, 1, tmp_path)
    path = str(tmp_path / "epoch-0001.npz")
    with np.load(path) as stored:
        meta = json.loads(str(stored["meta"]))
        names = set(stored.files) - {"meta"}
    assert set(meta["manifest"]) == names
    assert meta["epochs_done"] == 1
    assert sorted(os.listdir(tmp_path)) == ["epoch-0001.npz"]
