"""GreedySchedule("async"): asynchronous DGL, simulated and with threads."""

import json

import keras
import numpy as np
import pytest
from sklearn.datasets import load_digits

import localgrad
from localgrad.blocks.executors import AsyncExecutor, ThreadedExecutor
from localgrad.callbacks import EpochCheckpoint, GreedySchedule

SPARSE_CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _dense_model(num_blocks=3, devices=None, learning_rate=0.05, seed=0):
    keras.utils.set_random_seed(seed)
    units = [
        keras.Sequential(
            [keras.layers.Dense(8, activation="relu")], name=f"unit_{k}"
        )
        for k in range(num_blocks)
    ]
    network = localgrad.Network(units, keras.layers.Dense(3), input_shape=(6,))
    model = localgrad.GreedyModel(
        network,
        num_blocks=num_blocks,
        heads=lambda shape, classes: keras.layers.Dense(classes),
        devices=devices,
    )
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate, momentum=0.9),
        loss=SPARSE_CE,
        metrics=["accuracy"],
    )
    return model


def _data(size=40, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(size, 6)).astype("float32")
    y = (x[:, 0] > 0).astype("int32") + (x[:, 1] > 0.5).astype("int32")
    return x, y


def _weights(model):
    return [v.numpy() for v in model.trainable_variables]


def test_one_batch_buffers_in_round_robin_are_the_parallel_schedule():
    x, y = _data()
    parallel = _dense_model()
    parallel.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
    asynchronous = _dense_model()
    schedule = GreedySchedule(
        "async",
        buffer_size=1,
        warmup_repeats=0,
        draw="round_robin",
        verbose=0,
    )
    asynchronous.fit(
        x,
        y,
        batch_size=8,
        epochs=3,
        shuffle=False,
        verbose=0,
        callbacks=[schedule],
    )
    executor = schedule.async_run.executor
    assert isinstance(executor, AsyncExecutor)
    assert executor.block_steps == [15, 15, 15]  # 3 epochs of 5 batches
    assert executor.forward_steps == [0, 0, 0]
    assert executor.made_up_steps == [0, 0, 0]
    for mine, theirs in zip(_weights(asynchronous), _weights(parallel)):
        np.testing.assert_array_equal(mine, theirs)
    # The check has power: the released warm-up (0, 0, 1, 1, 2, 2) gives
    # other weights.
    warm = _dense_model()
    warm.fit(
        x,
        y,
        batch_size=8,
        epochs=3,
        shuffle=False,
        verbose=0,
        callbacks=[
            GreedySchedule(
                "async", buffer_size=1, draw="round_robin", verbose=0
            )
        ],
    )
    assert not np.array_equal(_weights(warm)[-1], _weights(parallel)[-1])


def test_every_block_trains_its_own_epochs_and_logs_its_buffer():
    x, y = _data(64)
    model = _dense_model()
    schedule = GreedySchedule(
        "async",
        buffer_size=3,
        slowdown={2: 2.0},
        block_epochs=2,
        seed=3,
        verbose=0,
    )
    fit_epochs = schedule.total_epochs(3)  # block 2 gets ~1/2 per batch
    assert fit_epochs == 5  # ceil(2 * 2 * 1.05)
    history = model.fit(
        x,
        y,
        batch_size=8,
        epochs=fit_epochs,
        verbose=0,
        callbacks=[schedule],
    ).history
    executor = schedule.async_run.executor
    assert executor.block_steps == [16, 16, 16]  # 2 epochs of 8 batches
    # Block 0 finished first and kept feeding the others, forward only.
    assert executor.forward_steps[0] > 0
    assert history["block_0_epochs"][0] == pytest.approx(1.0)
    assert history["block_2_epochs"][-1] == pytest.approx(2.0)
    assert history["block_2_epochs"][0] < 1.0  # the slowed block lags
    assert executor.done and model.stop_training
    stats = executor.statistics()
    assert history["block_1_skips"][-1] == stats[0]["skips"]
    assert history["buffer_2_filled"][-1] == 3
    reads, writes = stats[1]["reads"], stats[1]["writes"]
    assert history["block_2_reads_per_write"][-1] == pytest.approx(
        reads / writes
    )
    assert model.execution == "synchronous"  # put back at the end


# Two epochs are too few for the slowed block: the end of fit warns.
@pytest.mark.filterwarnings("ignore:fit ended too early")
def test_the_order_is_deterministic_for_a_seed_and_resumes(tmp_path):
    x, y = _data(32)

    def run(seed, epochs, directory, initial_epoch=0):
        model = _dense_model()
        checkpoint = EpochCheckpoint(str(directory))
        initial_epoch = checkpoint.restore(model)
        schedule = GreedySchedule(
            "async", buffer_size=2, slowdown={1: 1.5}, seed=seed, verbose=0
        )
        model.fit(
            x,
            y,
            batch_size=8,
            epochs=epochs,
            initial_epoch=initial_epoch,
            shuffle=False,
            verbose=0,
            callbacks=[schedule, checkpoint],
        )
        return model, schedule.async_run.executor

    first, first_executor = run(5, 2, tmp_path / "a")
    again, _ = run(5, 2, tmp_path / "b")
    other, _ = run(6, 2, tmp_path / "c")
    for mine, theirs in zip(_weights(first), _weights(again)):
        np.testing.assert_array_equal(mine, theirs)
    assert any(
        not np.array_equal(a, b)
        for a, b in zip(_weights(first), _weights(other))
    )
    # Resume in "a": the order goes on from the checkpoint's state.
    saved = json.loads(first.schedule_state)["order"]
    assert saved["ticks"] == first_executor.order.ticks
    resumed, executor = run(5, 3, tmp_path / "a")
    assert executor.order.ticks > saved["ticks"]
    assert executor.block_steps[0] == 12  # 2 epochs restored + 1 trained


def test_threads_on_two_devices_learn_digits():
    images, labels = load_digits(return_X_y=True)
    x = (images / 16.0).astype("float32").reshape(-1, 8, 8, 1)
    y = labels.astype("int32")
    keras.utils.set_random_seed(0)
    network = localgrad.models.build("mlp", (8, 8, 1), 10, width=0.125)
    model = localgrad.GreedyModel(
        network, num_blocks=2, heads="linear", devices=["/cpu:0", "/cpu:1"]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=SPARSE_CE,
        metrics=["accuracy"],
    )
    schedule = GreedySchedule(
        "async", buffer_size=4, slowdown={1: 1.5}, block_epochs=6, verbose=0
    )
    history = model.fit(
        x[:1400],
        y[:1400],
        batch_size=64,
        epochs=12,
        verbose=0,
        validation_data=(x[1400:], y[1400:]),
        callbacks=[schedule],
    ).history
    executor = schedule.async_run.executor
    assert isinstance(executor, ThreadedExecutor)
    steps_per_epoch = 22  # ceil(1400 / 64)
    assert executor.block_steps == [6 * steps_per_epoch] * 2
    assert history["block_1_epochs"][-1] == pytest.approx(6.0)
    assert not executor.running  # joined
    # Validation ran each epoch with the workers paused.
    assert len(history["val_accuracy"]) == len(history["loss"])
    logs = model.evaluate(x[1400:], y[1400:], return_dict=True, verbose=0)
    assert logs["accuracy"] > 0.8, logs


def test_threads_reading_once_in_order_train_the_parallel_weights():
    # Block 1, 3x slower, reads each batch once in the order written: it
    # sees block 0's outputs as in the parallel schedule, whatever the
    # threads' speeds (tests/distribute_async_test.py: on 2 workers).
    x, y = _data(48)
    devices = ["/cpu:0", "/cpu:1"]
    parallel = _dense_model(num_blocks=2, devices=devices)
    parallel.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    threaded = _dense_model(num_blocks=2, devices=devices)
    schedule = GreedySchedule(
        "async",
        buffer_size=2,
        sampling="fifo",
        max_reuse=1,
        slowdown={1: 3.0},
        block_epochs=2,
        verbose=0,
    )
    threaded.fit(
        x,
        y,
        batch_size=8,
        epochs=schedule.total_epochs(2),
        shuffle=False,
        verbose=0,
        callbacks=[schedule],
    )
    executor = schedule.async_run.executor
    assert isinstance(executor, ThreadedExecutor)
    assert executor.block_steps == [12, 12]  # 2 epochs of 6 batches
    (stats,) = executor.statistics()
    assert stats["reads"] == 12
    assert stats["uses_histogram"][0] == 0  # None overwritten unread.
    assert executor.forward_steps[0] <= 2 + 1  # At most M ahead.
    for mine, theirs in zip(_weights(threaded), _weights(parallel)):
        np.testing.assert_array_equal(mine, theirs)


def test_a_worker_error_is_raised_in_the_keras_thread():
    x, y = _data(32)
    model = _dense_model(num_blocks=2, devices=["/cpu:0", "/cpu:1"])

    class Broken(keras.losses.Loss):
        def call(self, y_true, y_pred):
            raise RuntimeError("block 1 broke")

    model.blocks[1].objective.loss = Broken()
    with pytest.raises(RuntimeError, match="block 1 broke"):
        model.fit(
            x,
            y,
            batch_size=8,
            epochs=2,
            verbose=0,
            callbacks=[GreedySchedule("async", buffer_size=2, verbose=0)],
        )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"buffer_size": 0}, "buffer_size must be an integer >= 1"),
        ({"sampling": "lifo"}, "Unknown sampling 'lifo'"),
        ({"slowdown": {1: 0.0}}, "finite number > 0"),
        ({"slowdown": {1: -2.0}}, "finite number > 0"),
        ({"max_reuse": 0}, "max_reuse must be None"),
        ({"block_epochs": 0}, "block_epochs must be > 0"),
    ],
)
def test_bad_arguments_are_clear_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GreedySchedule("async", **kwargs)


def test_a_slowdown_of_a_missing_block_is_refused_in_fit():
    x, y = _data(16)
    model = _dense_model(num_blocks=3)
    with pytest.raises(ValueError, match="names block 3, but the model has 3"):
        model.fit(
            x,
            y,
            batch_size=8,
            epochs=1,
            verbose=0,
            callbacks=[GreedySchedule("async", slowdown={3: 1.11})],
        )


def test_async_arguments_need_the_async_mode():
    with pytest.raises(ValueError, match="are for mode='async'"):
        GreedySchedule("parallel", buffer_size=5)


def test_a_learning_rate_drop_restarts_the_warmup():
    x, y = _data(48)
    model = _dense_model()
    # Every block's rate drops 10x after 3 of its own steps, once.
    model.compile(
        optimizer=keras.optimizers.SGD(
            keras.optimizers.schedules.PiecewiseConstantDecay(
                [3], [0.05, 0.005]
            )
        ),
        loss=SPARSE_CE,
    )
    schedule = GreedySchedule("async", buffer_size=2, verbose=0)
    restarts = []

    class Recorder(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            order = schedule.async_run.executor.order
            restart = order.restart_warmup

            def recorded():
                restarts.append(order.ticks)
                restart()

            order.restart_warmup = recorded

    model.fit(
        x,
        y,
        batch_size=8,
        epochs=2,
        verbose=0,
        callbacks=[schedule, Recorder()],
    )
    executor = schedule.async_run.executor
    # 2 epochs of 6 batches each: blocks drawn a few turns fewer than
    # block 0 made them up on their buffers at the end.
    assert executor.block_steps == [12, 12, 12]
    assert sum(executor.made_up_steps) < 6
    assert len(restarts) == 3  # one drop per block
    for block in model.blocks:
        assert float(block.optimizer.learning_rate) == pytest.approx(0.005)
