"""Keras' own callbacks act on a GreedyModel (and would fail if they did not).

BackupAndRestore is tested in greedy_model_state_test.py.
"""

import csv
import glob
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import localgrad

BATCH = 16


def _model(learning_rate=0.1):
    keras.utils.set_random_seed(0)
    units = [
        keras.Sequential(
            [keras.layers.Dense(8, activation="relu")], name=f"unit_{k}"
        )
        for k in range(4)
    ]
    network = localgrad.Network(
        units, keras.layers.Dense(3, name="logits"), input_shape=(6,)
    )
    model = localgrad.GreedyModel(network, num_blocks=2, heads="linear")
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def _data(size=64, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(size, 6)).astype("float32")
    y = (x[:, 0] > 0).astype("int32") + (x[:, 1] > 0.5).astype("int32")
    return x, y


def _fit(model, callbacks, epochs=3, sample_weight=None):
    x, y = _data()
    return model.fit(
        x,
        y,
        sample_weight=sample_weight,
        batch_size=BATCH,
        epochs=epochs,
        validation_data=_data(size=32, seed=2),
        shuffle=False,
        verbose=0,
        callbacks=callbacks,
    )


@pytest.mark.parametrize("monitor", ["val_accuracy", "val_block_0_accuracy"])
def test_early_stopping_infers_that_accuracy_is_maximised(monitor):
    # Nothing learns: no epoch after the first improves, patience runs out.
    stop = keras.callbacks.EarlyStopping(monitor, patience=1)
    history = _fit(_model(learning_rate=0.0), [stop], epochs=6)
    assert len(history.epoch) == 2
    assert stop.monitor_op is keras.ops.greater


def test_model_checkpoint_keeps_the_best_epoch(tmp_path):
    path = str(tmp_path / "best.keras")
    checkpoint = keras.callbacks.ModelCheckpoint(
        path, monitor="val_accuracy", save_best_only=True
    )
    history = _fit(_model(learning_rate=0.3), [checkpoint], epochs=4)
    best = keras.saving.load_model(path)
    logs = best.evaluate(*_data(size=32, seed=2), return_dict=True, verbose=0)
    assert logs["accuracy"] == pytest.approx(
        max(history.history["val_accuracy"])
    )


class _BlockRates(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.rates = []

    def on_epoch_end(self, epoch, logs=None):
        self.rates.append(
            [float(o.learning_rate) for o in self.model.block_optimizers]
        )


def test_reduce_lr_on_plateau_reaches_every_block():
    # No epoch improves by 1.0: after the first, every epoch reduces.
    reduce = keras.callbacks.ReduceLROnPlateau(
        "val_accuracy", factor=0.5, patience=1, min_delta=1.0
    )
    rates = _BlockRates()
    _fit(_model(), [rates, reduce], epochs=4)
    # Recorded before the reduction at the end of the same epoch.
    np.testing.assert_allclose(
        rates.rates, [[0.1, 0.1], [0.1, 0.1], [0.05, 0.05], [0.025, 0.025]]
    )


def test_csv_logger_writes_every_block(tmp_path):
    path = str(tmp_path / "log.csv")
    history = _fit(_model(), [keras.callbacks.CSVLogger(path)], epochs=2)
    with open(path) as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 2
    for name in (
        "loss",
        "accuracy",
        "block_0_loss",
        "block_1_accuracy",
        "val_block_0_accuracy",
    ):
        np.testing.assert_allclose(
            [float(row[name]) for row in rows],
            history.history[name],
            rtol=1e-6,
        )


def _tags(directory):
    tags = set()
    for path in glob.glob(os.path.join(directory, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    return tags


def test_tensorboard_gets_the_block_metrics(tmp_path):
    log_dir = str(tmp_path / "tensorboard")
    _fit(_model(), [keras.callbacks.TensorBoard(log_dir)], epochs=2)
    expected = {
        "epoch_loss",
        "epoch_accuracy",
        "epoch_block_0_loss",
        "epoch_block_1_accuracy",
    }
    assert expected <= _tags(os.path.join(log_dir, "train"))
    assert expected <= _tags(os.path.join(log_dir, "validation"))


class _BatchCounter(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1


@pytest.mark.numerics
def test_terminate_on_nan_stops_at_the_first_nan_batch():
    # The NaN is in the second batch's sample weights, which multiply every
    # block's loss. (NaN inputs need not reach the loss: oneDNN's ReLU, the
    # default kernel on Intel CPUs, maps NaN to 0.)
    weights = np.ones(len(_data()[0]), "float32")
    weights[BATCH : 2 * BATCH] = np.nan
    counter = _BatchCounter()
    callbacks = [counter, keras.callbacks.TerminateOnNaN()]
    history = _fit(_model(), callbacks, sample_weight=weights)
    assert counter.batches == 2 and len(history.epoch) == 1


def test_summary_shows_blocks_units_heads_and_parameters():
    model = _model()
    lines = []
    model.summary(print_fn=lines.append)
    start = next(i for i, line in enumerate(lines) if line.startswith("block"))
    rows = [line.split() for line in lines[start + 2 : start + 5]]
    # Dense(6 -> 8) + Dense(8 -> 8) = 56 + 72; linear head 8 -> 3 = 27.
    assert rows[0][:6] == ["0", "1-2", "(unit_0..unit_1)", "linear", "-", "128"]
    assert rows[0][6] == "27"
    assert rows[1][:7] == [
        "1",
        "3-4",
        "(unit_2..unit_3)",
        "logits",
        "-",
        "144",
        "27",
    ]
    assert rows[2] == ["total", "272", "54"]
    assert model.count_params() == 272 + 54
