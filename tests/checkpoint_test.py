"""Tests of localgrad.callbacks.EpochCheckpoint."""

import json
import os
import shutil

import keras
import numpy as np
import pytest

import localgrad
from localgrad.blocks.training_state import optimizer_variables
from localgrad.callbacks import EpochCheckpoint, NoIntactCheckpointError
from localgrad.variable_names import layer_variable_names


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
    names = layer_variable_names(fresh)
    for variable in fresh.weights:
        np.testing.assert_array_equal(
            variable.numpy(), older[f"model/{names[id(variable)]}"]
        )
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


# A model small enough to train in a moment, with a BatchNormalization
# whose four variables share one shape: restored by position in the wrong
# order, nothing would complain.
BY_POSITION = os.path.join(
    os.path.dirname(__file__), "data", "checkpoint_by_position"
)


class _ReorderedBatchNormalization(keras.layers.BatchNormalization):
    """A BatchNormalization listing its variables in the opposite order."""

    @property
    def weights(self):
        return list(reversed(super().weights))


def _small_model(batch_norm=keras.layers.BatchNormalization):
    keras.utils.set_random_seed(0)
    units = [
        keras.Sequential([keras.layers.Dense(4), batch_norm()]),
        keras.Sequential([keras.layers.Dense(4, activation="relu")]),
    ]
    network = localgrad.Network(units, keras.layers.Dense(3), (5,))
    model = localgrad.GreedyModel(
        network,
        num_blocks=2,
        heads=lambda shape, classes: keras.layers.Dense(classes),
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def _small_data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(12, 5)).astype("float32"), rng.integers(0, 3, 12)


def _batch_norm(model):
    return model.network.units[0].layers[1]


@pytest.fixture(scope="module")
def small_fitted(tmp_path_factory):
    """The small model after one epoch, and its checkpoint directory."""
    directory = str(tmp_path_factory.mktemp("small"))
    model = _small_model()
    x, y = _small_data()
    model.fit(
        x,
        y,
        batch_size=4,
        epochs=1,
        verbose=0,
        callbacks=[EpochCheckpoint(directory)],
    )
    return model, directory


def test_restore_goes_by_name_not_by_position(small_fitted, tmp_path):
    trained, directory = small_fitted
    shutil.copytree(directory, tmp_path, dirs_exist_ok=True)
    fresh = _small_model(batch_norm=_ReorderedBatchNormalization)
    before, after = _batch_norm(trained), _batch_norm(fresh)
    assert [v.name for v in after.weights] == [
        v.name for v in reversed(before.weights)
    ]

    assert EpochCheckpoint(str(tmp_path)).restore(fresh) == 1
    for name in ("gamma", "beta", "moving_mean", "moving_variance"):
        np.testing.assert_array_equal(
            getattr(after, name).numpy(), getattr(before, name).numpy()
        )
    # The block optimizer built its slots in the other order too.
    slots = [_slots(model.block_optimizers[0]) for model in (trained, fresh)]
    for name in ("gamma", "beta"):
        np.testing.assert_array_equal(
            slots[1][_momentum_name(getattr(after, name))],
            slots[0][_momentum_name(getattr(before, name))],
        )
    others = [trained.network.units[1], fresh.network.units[1]]
    for a, b in zip(*(_values(unit.weights) for unit in others)):
        np.testing.assert_array_equal(a, b)


def _slots(optimizer):
    return {variable.name: variable.numpy() for variable in optimizer.variables}


def _momentum_name(variable):
    """The name Keras gives `variable`'s momentum slot."""
    return variable.path.replace("/", "_") + "_momentum"


def _rewritten(directory, tmp_path, change):
    """A copy of `directory`'s checkpoint, `change(arrays, meta)` applied."""
    path = os.path.join(directory, "epoch-0001.npz")
    arrays, meta = localgrad.checkpoint_files.read_arrays(path)
    change(arrays, meta)
    localgrad.checkpoint_files.write_arrays(
        str(tmp_path / "epoch-0001.npz"), arrays, meta
    )
    return str(tmp_path)


def test_a_variable_the_checkpoint_lacks_is_refused_by_name(
    small_fitted, tmp_path
):
    gamma = "model/network/units/0/layers/1/gamma"
    directory = _rewritten(small_fitted[1], tmp_path, lambda a, _: a.pop(gamma))
    fresh = _small_model()
    with pytest.raises(ValueError) as refused:
        EpochCheckpoint(directory).restore(fresh)
    message = str(refused.value)
    assert gamma in message and _batch_norm(fresh).gamma.path in message
    assert "different model" in message
    assert "start_over=True" in message and "--config.restart=true" in message


def test_a_variable_the_model_lacks_is_refused_by_name(small_fitted, tmp_path):
    extra = "optimizer_1/network/units/0/layers/1/gamma/velocity"
    directory = _rewritten(
        small_fitted[1], tmp_path, lambda a, _: a.update({extra: np.zeros(4)})
    )
    with pytest.raises(ValueError, match=f"{extra}.*different model"):
        EpochCheckpoint(directory).restore(_small_model())


def test_a_newer_format_is_refused(small_fitted, tmp_path):
    directory = _rewritten(
        small_fitted[1], tmp_path, lambda _, m: m.update(format="tensors")
    )
    with pytest.raises(ValueError, match="'tensors'.*upgrade localgrad"):
        EpochCheckpoint(directory).restore(_small_model())


def test_a_checkpoint_by_position_still_loads(tmp_path, caplog):
    """A checkpoint an earlier localgrad wrote (variables by position).

    `tests/data/checkpoint_by_position/epoch-0001.npz` is what
    `small_fitted` saved with the EpochCheckpoint of commit 6051c7d.
    """
    shutil.copytree(BY_POSITION, tmp_path, dirs_exist_ok=True)
    fresh = _small_model()
    with caplog.at_level("WARNING"):
        assert EpochCheckpoint(str(tmp_path)).restore(fresh) == 1
    assert "restored by position" in caplog.text
    arrays, _ = localgrad.checkpoint_files.read_arrays(
        str(tmp_path / "epoch-0001.npz")
    )
    optimizers = [fresh.optimizer] + fresh.block_optimizers
    groups = {"model": fresh.weights} | {
        f"optimizer_{i}": optimizer_variables(optimizer)
        for i, optimizer in enumerate(optimizers)
    }
    assert len(arrays) == sum(len(group) for group in groups.values())
    for group, variables in groups.items():
        for i, variable in enumerate(variables):
            np.testing.assert_array_equal(
                variable.numpy(), arrays[f"{group}/{i}"]
            )
    assert int(fresh.block_optimizers[0].iterations) == 3


def _associated_model():
    keras.utils.set_random_seed(0)
    units = [keras.layers.Dense(6, activation="relu") for _ in range(2)]
    network = localgrad.Network(units, keras.layers.Dense(3), (5,))
    model = localgrad.AssociatedModel(network, num_blocks=2, label_width=4)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    return model


def test_an_associated_model_round_trips_by_name(tmp_path):
    trained = _associated_model()
    x, y = _small_data()
    checkpoint = EpochCheckpoint(str(tmp_path))
    trained.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[checkpoint])
    fresh = _associated_model()
    assert EpochCheckpoint(str(tmp_path)).restore(fresh) == 1
    for a, b in zip(trained.weights, fresh.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for before, after in zip(trained.block_optimizers, fresh.block_optimizers):
        assert int(after.iterations) == 3
        for a, b in zip(before.variables, after.variables):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
