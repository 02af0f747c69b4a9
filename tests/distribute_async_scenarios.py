"""Asynchronous DGL on worker processes, run by distribute_async_test.py.

As in tests/distribute_scenarios.py: connecting to a cluster is
process-wide, so each scenario runs in a fresh process against workers
the test started, and prints one JSON line, `RESULT {...}`.

    python tests/distribute_async_scenarios.py threads_on_workers \
        127.0.0.1:p,127.0.0.1:q
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

import localgrad  # noqa: E402

TRAIN = 1400  # digits examples to train on; the other 397 validate
BATCH_SIZE = 64


def _digits():
    images, labels = load_digits(return_X_y=True)
    x = (images / 16.0).astype("float32").reshape(-1, 8, 8, 1)
    return x, labels.astype("int32")


def _model(devices):
    keras.utils.set_random_seed(0)
    network = localgrad.models.build("mlp", (8, 8, 1), 10, width=0.125)
    model = localgrad.GreedyModel(
        network, num_blocks=2, heads="linear", devices=devices
    )
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def _devices_of(variables):
    return sorted({v.value.device for v in variables})


def threads_on_workers(cluster, buffer_size, slowdown):
    """Real asynchronous DGL, block k on task k, and its synchronous twin.

    Block 1 is slowed by `slowdown`. Its buffer is read in write order
    (`fifo`) and each batch once (`max_reuse=1`): block 1 must then see
    block 0's outputs in the order of the synchronous (parallel) schedule,
    whatever the threads' speeds, so its twin, trained parallel on two
    local logical devices, must end with the same weights.
    """
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )
    workers = localgrad.distribute.connect(cluster, timeout=60)
    x, y = _digits()
    remote = _model(workers)
    initial = [v.numpy() for v in remote.trainable_variables]
    schedule = localgrad.callbacks.GreedySchedule(
        "async",
        buffer_size=int(buffer_size),
        sampling="fifo",
        max_reuse=1,
        slowdown={1: float(slowdown)},
        block_epochs=1,
        verbose=0,
    )
    history = remote.fit(
        x[:TRAIN],
        y[:TRAIN],
        batch_size=BATCH_SIZE,
        epochs=schedule.total_epochs(2),
        shuffle=False,
        verbose=0,
        validation_data=(x[TRAIN:], y[TRAIN:]),
        callbacks=[schedule],
    ).history
    executor = schedule.async_run.executor
    twin = _model(["/cpu:0", "/cpu:1"])
    twin.fit(
        x[:TRAIN],
        y[:TRAIN],
        batch_size=BATCH_SIZE,
        epochs=1,
        shuffle=False,
        verbose=0,
    )
    evaluated = remote.evaluate(
        x[TRAIN:], y[TRAIN:], return_dict=True, verbose=0
    )
    weights = remote.trainable_variables
    return {
        "executor": type(executor).__name__,
        "running": executor.running,
        "devices": remote.devices,
        "variables": [_devices_of(b.variables) for b in remote.blocks],
        "optimizer_variables": [
            _devices_of(b.optimizer.variables) for b in remote.blocks
        ],
        "buffer_devices": [buffer.device for buffer in executor.buffers],
        "block_steps": executor.block_steps,
        "forward_steps": executor.forward_steps,
        "made_up_steps": executor.made_up_steps,
        "statistics": executor.statistics(),
        "history": history,
        "difference": max(
            float(np.max(np.abs(a.numpy() - b.numpy())))
            for a, b in zip(weights, twin.trainable_variables)
        ),
        "change": max(
            float(np.max(np.abs(a.numpy() - b)))
            for a, b in zip(weights, initial)
        ),
        "accuracy": evaluated["accuracy"],
    }


def main(scenario, *args):
    result = globals()[scenario](*args)
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
