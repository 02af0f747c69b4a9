"""Block optimizers are saved and restored with the model, exactly."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import localgrad

SPARSE_CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _model(seed=0):
    keras.utils.set_random_seed(seed)
    units = [
        keras.Sequential(
            [
                keras.layers.Dense(12, activation="relu"),
                keras.layers.BatchNormalization(),
            ]
        )
        for _ in range(4)
    ]
    network = localgrad.Network(units, keras.layers.Dense(3), input_shape=(6,))
    model = localgrad.GreedyModel(network, num_blocks=2, heads="linear")
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=SPARSE_CE,
        metrics=["accuracy"],
    )
    return model


def _data(size=48, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(size, 6)).astype("float32")
    y = (x[:, 0] > 0).astype("int32") + (x[:, 1] > 0.5).astype("int32")
    return x, y


def _state(model):
    """Every weight and every optimizer variable, as arrays."""
    variables = list(model.weights)
    for optimizer in [model.optimizer] + model.block_optimizers:
        variables += list(optimizer.variables)
    return [v.numpy().copy() for v in variables]


def _assert_same(first, second):
    assert len(first) == len(second)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def _trained(seed=0, steps=3):
    model = _model(seed)
    x, y = _data()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return model


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """One trained model saved in all three formats, and its next step.

    The round-trip tests share it: each restores a file and checks that
    the restored model continues exactly as this model did.
    """
    directory = tmp_path_factory.mktemp("saved")
    model = _trained()
    paths = dict(
        weights=os.path.join(directory, "model.weights.h5"),
        keras=os.path.join(directory, "model.keras"),
    )
    model.save_weights(paths["weights"])
    model.save(paths["keras"])
    paths["checkpoint"] = tf.train.Checkpoint(model=model).write(
        os.path.join(directory, "checkpoint")
    )
    before = _state(model)
    model.train_on_batch(*_data(seed=2))
    return paths, before, _state(model)


def _assert_continues_identically(saved, restored):
    _, before, after = saved
    _assert_same(before, _state(restored))
    iterations = [o.iterations.numpy() for o in restored.block_optimizers]
    assert iterations == [3, 3]
    restored.train_on_batch(*_data(seed=2))
    _assert_same(after, _state(restored))


def test_save_weights_round_trip_includes_block_optimizers(saved):
    restored = _model(seed=5)  # Other initial weights, fresh optimizers.
    assert not all(
        np.array_equal(a, b) for a, b in zip(saved[1], _state(restored))
    )
    restored.load_weights(saved[0]["weights"])
    _assert_continues_identically(saved, restored)


def test_tf_train_checkpoint_round_trip(saved):
    restored = _model(seed=5)
    path = saved[0]["checkpoint"]
    tf.train.Checkpoint(model=restored).read(path).assert_consumed()
    _assert_continues_identically(saved, restored)


def test_keras_file_round_trip_keeps_optimizer_state(saved):
    restored = keras.saving.load_model(saved[0]["keras"])
    _assert_continues_identically(saved, restored)


class _StopAtEpoch(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError("interrupted")


@pytest.mark.parametrize("schedule", ["parallel", "pipelined"])
def test_backup_and_restore_resumes_exactly(tmp_path, schedule):
    x, y = _data(size=64)
    options = dict(batch_size=16, epochs=3, shuffle=False, verbose=0)

    def callbacks():
        return [localgrad.callbacks.GreedySchedule(schedule, verbose=0)]

    uninterrupted = _model()
    uninterrupted.fit(x, y, callbacks=callbacks(), **options)

    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    interrupted = _model()
    with pytest.raises(RuntimeError, match="interrupted"):
        interrupted.fit(
            x, y, callbacks=callbacks() + [backup, _StopAtEpoch(2)], **options
        )
    resumed = _model(seed=5)
    resumed.fit(x, y, callbacks=callbacks() + [backup], **options)
    _assert_same(_state(uninterrupted), _state(resumed))
