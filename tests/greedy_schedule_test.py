"""Tests for localgrad.callbacks.GreedySchedule."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import localgrad
from localgrad.callbacks import GreedySchedule

SPARSE_CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _model(num_blocks=3):
    keras.utils.set_random_seed(0)
    units = [
        keras.layers.Dense(8, activation="relu", name=f"unit_{i}")
        for i in range(num_blocks)
    ]
    network = localgrad.Network(units, keras.layers.Dense(3), (6,))
    model = localgrad.GreedyModel(
        network,
        num_blocks=num_blocks,
        heads=lambda shape, classes: keras.layers.Dense(classes),
    )
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=SPARSE_CE)
    return model


def _data(size=16, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(size, 6)).astype("float32")
    return x, (x[:, 0] > 0).astype("int32")


class _Recorder(keras.callbacks.Callback):
    """Per step: the trained blocks and the blocks whose weights moved."""

    def __init__(self):
        super().__init__()
        self.trained, self.moved = [], []

    def _weights(self):
        return [
            [v.numpy().copy() for v in self.model.block_trainable_variables(k)]
            for k in range(self.model.num_blocks)
        ]

    def on_train_batch_begin(self, batch, logs=None):
        self._before = self._weights()

    def on_train_batch_end(self, batch, logs=None):
        self.trained.append(self.model.trained_blocks)
        self.moved.append(
            [
                k
                for k, (old, new) in enumerate(
                    zip(self._before, self._weights())
                )
                if any(not np.array_equal(a, b) for a, b in zip(old, new))
            ]
        )


@pytest.mark.parametrize("mode, laps", [("sequential", 1), ("multilap", 2)])
def test_block_k_trains_e1_plus_k_e2_epochs(mode, laps):
    model = _model()
    schedule = GreedySchedule(
        mode,
        laps=laps,
        epochs_per_block=2,
        extra_epochs_per_depth=1,
        verbose=0,
    )
    assert schedule.total_epochs(3) == 2 + 3 + 4
    recorder = _Recorder()
    x, y = _data()  # 2 steps per epoch at batch size 8.
    model.fit(
        x,
        y,
        batch_size=8,
        epochs=schedule.total_epochs(3),
        verbose=0,
        callbacks=[schedule, recorder],
    )
    # Block k trains (2 + k) epochs = 2 (2 + k) steps, in `laps` phases.
    iterations = [int(o.iterations) for o in model.block_optimizers]
    assert iterations == [4, 6, 8]
    lap = [[0]] * (4 // laps) + [[1]] * (6 // laps) + [[2]] * (8 // laps)
    assert recorder.trained == lap * laps
    assert recorder.moved == recorder.trained  # Only that block learns.
    assert model.trained_blocks == [0, 1, 2]  # Restored after fit.


def test_fit_with_other_epochs_than_the_plan_is_an_error():
    model = _model()
    schedule = GreedySchedule("sequential", extra_epochs_per_depth=1.0)
    x, y = _data()
    with pytest.raises(ValueError, match=r"1 \+ 2 \+ 3 = 6 epochs.*has 4"):
        model.fit(x, y, epochs=4, verbose=0, callbacks=[schedule])
    assert all(int(o.iterations) == 0 for o in model.block_optimizers)


def test_plan_lays_fractional_lap_epochs_out_in_steps():
    schedule = GreedySchedule(
        "sequential", epochs_per_block=2, extra_epochs_per_depth=1
    )
    assert schedule.plan(3, steps_per_epoch=10) == [
        (0, 0, 0, 20),
        (1, 0, 20, 50),
        (2, 0, 50, 90),
    ]
    laps = GreedySchedule("multilap", laps=3)  # 1/3 epoch per phase.
    assert laps.plan(2, steps_per_epoch=3) == [
        (0, 0, 0, 1),
        (1, 0, 1, 2),
        (0, 1, 2, 3),
        (1, 1, 3, 4),
        (0, 2, 4, 5),
        (1, 2, 5, 6),
    ]
    with pytest.raises(ValueError, match="no step at 2 steps per epoch"):
        laps.plan(2, steps_per_epoch=2)


def test_fractional_phases_need_known_steps_per_epoch():
    model = _model(num_blocks=2)
    schedule = GreedySchedule("multilap", laps=2, verbose=0)  # 1/2 epochs.
    x, y = _data()
    unknown_size = tf.data.Dataset.from_tensor_slices((x, y)).filter(
        lambda *_: True
    )
    with pytest.raises(ValueError, match="pass steps_per_epoch"):
        model.fit(unknown_size.batch(8), epochs=2, callbacks=[schedule])
    whole = GreedySchedule("sequential", verbose=0)
    model.fit(unknown_size.batch(8), epochs=2, callbacks=[whole], verbose=0)
    assert [int(o.iterations) for o in model.block_optimizers] == [2, 2]


def test_total_epochs_is_whole_and_not_for_parallel():
    with pytest.raises(ValueError, match="no total_epochs"):
        GreedySchedule("parallel").total_epochs(3)
    with pytest.raises(ValueError, match="not a whole number"):
        GreedySchedule("sequential", epochs_per_block=0.5).total_epochs(3)
    multilap = GreedySchedule(
        "multilap", laps=3, epochs_per_block=50, extra_epochs_per_depth=10
    )
    assert multilap.total_epochs(4) == 50 + 60 + 70 + 80


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"mode": "zigzag"}, "Unknown schedule"),
        ({"mode": "sequential", "laps": 2}, "only for mode='multilap'"),
        ({"mode": "multilap", "laps": 0}, "at least 1"),
        ({"mode": "sequential", "epochs_per_block": 0}, "must be > 0"),
    ],
)
def test_bad_schedules_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GreedySchedule(**kwargs)
