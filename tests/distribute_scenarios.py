"""Cluster scenarios, each run in its own process by distribute_*_test.py.

Connecting to a cluster is process-wide in TensorFlow, so every scenario
runs here, in a fresh process, against workers the test started; it prints
one JSON line, `RESULT {...}`, that the test reads.

    python tests/distribute_scenarios.py placement 127.0.0.1:p,127.0.0.1:q
"""

import contextlib
import json
import os
import signal
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import localgrad  # noqa: E402

STEPS = 3


def _model(seed):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(3),
        ]
    )
    optimizer = keras.optimizers.SGD(0.1, momentum=0.9)
    optimizer.build(model.trainable_variables)
    return model, optimizer


def _train_step(model, optimizer, device):
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def step(x, y):
        with tf.device(device):
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x, training=True))
            gradients = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(gradients, model.trainable_variables))
            return loss

    return step


def _batches(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(STEPS, 16, 6)).astype("float32")
    y = rng.integers(0, 3, size=(STEPS, 16)).astype("int32")
    return x, y


def devices(cluster):
    return {
        "one": localgrad.distribute.connect(cluster, timeout=60),
        "all": localgrad.distribute.worker_devices(2, "all"),
        "connected": localgrad.distribute.connected_cluster(),
    }


def placement(cluster):
    """Two models, one per worker, trained together; local twins alike."""
    names = localgrad.distribute.connect(cluster, timeout=60)
    result = {"variables": [], "optimizer_variables": [], "differences": []}
    remote, local = [], []
    for task, name in enumerate(names):
        with tf.device(name):
            model, optimizer = _model(seed=task)
        remote.append((model, optimizer, _train_step(model, optimizer, name)))
        twin, twin_optimizer = _model(seed=task)
        local.append(
            (twin, twin_optimizer, _train_step(twin, twin_optimizer, "/cpu:0"))
        )
        result["variables"].append(
            sorted({v.value.device for v in model.variables})
        )
        result["optimizer_variables"].append(
            sorted({v.value.device for v in optimizer.variables})
        )
    initial = [[v.numpy() for v in m.trainable_variables] for m, _, _ in local]
    data = [_batches(seed=10 + task) for task in range(len(names))]
    for step in range(STEPS):
        for runs in (remote, local):  # Remote steps dispatched together.
            for task, (_, _, train) in enumerate(runs):
                train(data[task][0][step], data[task][1][step])
    result["changes"] = []
    for (model, _, _), (twin, _, _), start in zip(remote, local, initial):
        result["differences"].append(_max_difference(model, twin.variables))
        result["changes"].append(_max_difference(model, start))
    return result


def _max_difference(model, values):
    return max(
        float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
        for a, b in zip(model.trainable_variables, values)
    )


def killed_during_fit(cluster, worker_pid, schedule="parallel"):
    """A GreedyModel on task 1 is fitting when task 1's worker is killed.

    `schedule="pipelined"`: block k on task k, trained pipelined.
    """
    names = localgrad.distribute.connect(cluster, timeout=60)
    pipelined = schedule == "pipelined"
    with tf.device(names[1]) if not pipelined else contextlib.nullcontext():
        keras.utils.set_random_seed(0)
        network = localgrad.Network(
            [keras.layers.Dense(8, activation="relu") for _ in range(2)],
            keras.layers.Dense(3),
            input_shape=(6,),
        )
        model = localgrad.GreedyModel(
            network,
            num_blocks=2,
            heads=lambda s, c: keras.layers.Dense(c),
            devices=names if pipelined else None,
        )
        model.compile(
            optimizer=keras.optimizers.SGD(0.1),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
    kill = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: (
            batch == 3 and os.kill(int(worker_pid), signal.SIGKILL)
        )
    )
    x, y = _batches(seed=0)
    try:
        with localgrad.distribute.reporting_lost_workers():
            model.fit(
                np.tile(x.reshape(-1, 6), (100, 1)),
                np.tile(y.reshape(-1), 100),
                batch_size=16,
                epochs=1,
                callbacks=[kill, localgrad.callbacks.GreedySchedule(schedule)],
                verbose=0,
            )
    except localgrad.distribute.WorkerLostError as error:
        return {
            "error": "WorkerLostError",
            "message": str(error),
            "tasks": error.tasks,
            "addresses": error.addresses,
            "cause": type(error.__cause__).__name__,
        }
    return {"error": None}


def silent(cluster):
    """Some addresses of the cluster do not answer."""
    try:
        localgrad.distribute.connect(cluster, timeout=3)
    except ValueError as error:
        return {"error": "ValueError", "message": str(error)}
    return {"error": None}


def multi_worker(cluster, task, reference="no"):
    """GreedyModel's per-block steps under MultiWorkerMirroredStrategy.

    Worker `task` of `cluster` trains on its half of every global batch of
    8; with `cluster="none"` one process trains on the whole batches (the
    reference). Then Keras' `fit` is tried under the same strategy. With
    `reference="yes"` this process then trains the reference too, under
    the default strategy (sparing a process), in `result["reference"]`.
    """
    task = int(task)
    if cluster != "none":
        addresses = localgrad.distribute.parse_cluster(cluster)
        os.environ["TF_CONFIG"] = json.dumps(
            {
                "cluster": {"worker": addresses},
                "task": {"type": "worker", "index": task},
            }
        )
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    else:
        strategy = tf.distribute.get_strategy()
    result = _multi_worker_train(strategy, task, fit=cluster != "none")
    if reference == "yes":
        result["reference"] = _multi_worker_train(
            tf.distribute.get_strategy(), 0, fit=False
        )
    return result


def _multi_worker_train(strategy, task, fit):
    replicas = strategy.num_replicas_in_sync
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 8, 6)).astype("float32")  # 4 global batches
    y = (x[..., 0] > 0).astype("int32") + (x[..., 1] > 0.5).astype("int32")
    share = slice(task * 8 // replicas, (task + 1) * 8 // replicas)
    with strategy.scope():
        keras.utils.set_random_seed(0)
        units = [
            keras.Sequential([keras.layers.Dense(16, activation="relu")])
            for _ in range(4)
        ]
        network = localgrad.Network(
            units, keras.layers.Dense(3), input_shape=(6,)
        )
        model = localgrad.GreedyModel(
            network,
            num_blocks=2,
            heads=lambda shape, classes: keras.layers.Dense(classes),
        )
        model.compile(
            optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
    initial = [v.numpy().tolist() for v in model.trainable_variables]
    for _ in range(2):  # epochs
        for batch in range(len(x)):
            model.train_on_batch(x[batch, share], y[batch, share])
    result = {
        "replicas": replicas,
        "initial": initial,
        "weights": [v.numpy().tolist() for v in model.trainable_variables],
    }
    if fit:
        try:
            model.fit(x[0, share], y[0, share], epochs=1, verbose=0)
            result["fit"] = "trained"
        except ValueError as error:
            result["fit"] = str(error)
    return result


def _greedy_model(devices, units=None):
    keras.utils.set_random_seed(0)
    units = units or [
        keras.Sequential([keras.layers.Dense(8, activation="relu")])
        for _ in range(4)
    ]
    network = localgrad.Network(units, keras.layers.Dense(3), input_shape=(6,))
    model = localgrad.GreedyModel(
        network, num_blocks=2, heads="linear", devices=devices
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def pipelined_on_workers(cluster):
    """A pipelined GreedyModel on two workers and its twin on two local
    logical devices: same initial weights, same batches."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )
    workers = localgrad.distribute.connect(cluster, timeout=60)
    models = {
        "workers": _greedy_model(workers),
        "local": _greedy_model(["/cpu:0", "/cpu:1"]),
    }
    x, y = _batches(seed=0)
    x, y = x.reshape(-1, 6), y.reshape(-1)  # 3 batches of 16
    initial = [v.numpy() for v in models["local"].weights]
    for model in models.values():
        model.fit(
            x,
            y,
            batch_size=16,
            epochs=2,
            shuffle=False,
            verbose=0,
            callbacks=[localgrad.callbacks.GreedySchedule("pipelined")],
        )
    remote = models["workers"]
    return {
        "devices": remote.devices,
        "variables": [
            sorted({v.value.device for v in block.variables})
            for block in remote.blocks
        ],
        "optimizer_variables": [
            sorted({v.value.device for v in block.optimizer.variables})
            for block in remote.blocks
        ],
        "iterations": [
            int(o.iterations.numpy()) for o in remote.block_optimizers
        ],
        "difference": max(
            float(np.max(np.abs(a.numpy() - b.numpy())))
            for a, b in zip(remote.weights, models["local"].weights)
        ),
        "change": max(
            float(np.max(np.abs(a.numpy() - b)))
            for a, b in zip(remote.weights, initial)
        ),
    }


class Stamped(keras.layers.Layer):
    """Dense layers whose call records when it starts and ends (worker
    clock: the workers of a LocalCluster share this machine's clock)."""

    def build(self, input_shape):
        self.kernel = self.add_weight(
            shape=(input_shape[-1], input_shape[-1]), initializer="identity"
        )
        self.started = self.add_weight(
            shape=(), dtype="float64", initializer="zeros", trainable=False
        )
        self.ended = self.add_weight(
            shape=(), dtype="float64", initializer="zeros", trainable=False
        )

    def call(self, inputs):
        started = tf.timestamp()
        outputs = inputs + tf.cast(0.0 * started, inputs.dtype)
        for _ in range(30):  # Long enough to be seen running.
            outputs = tf.matmul(outputs, self.kernel) * 0.5
        with tf.control_dependencies([outputs]):
            ended = tf.timestamp()
        self.started.assign(started)
        self.ended.assign(ended)
        return outputs


def overlap(cluster):
    """When each block's step ran on its worker, dispatched one after the
    other (synchronous) and together (pipelined)."""
    workers = localgrad.distribute.connect(cluster, timeout=60)
    keras.utils.set_random_seed(0)
    units = [Stamped(), Stamped()]
    network = localgrad.Network(
        units, keras.layers.Dense(3), input_shape=(384,)
    )
    model = localgrad.GreedyModel(
        network, num_blocks=2, heads="linear", devices=workers
    )
    model.compile(
        optimizer=keras.optimizers.SGD(1e-6),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 384)).astype("float32")
    y = rng.integers(0, 3, size=512).astype("int32")
    intervals = {}
    for execution in ("synchronous", "pipelined"):
        model.execution = execution
        for _ in range(3):  # The last pipelined step trains both blocks.
            model.train_on_batch(x, y)
        intervals[execution] = [
            [float(u.started.numpy()), float(u.ended.numpy())] for u in units
        ]
    return intervals


def several(calls):
    """Runs scenarios one after the other in this process, to spare a
    process each: `calls` is a JSON list of `[scenario, *args]`; returns
    their results by scenario."""
    return {name: globals()[name](*args) for name, *args in json.loads(calls)}


def main(scenario, *args):
    result = globals()[scenario](*args)
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
