"""Pipelined greedy training on worker processes against one worker.

K = 2 blocks of a compute-balanced network (split by FLOPs) on two local
worker processes, each pinned to its own core with one thread
(`LocalCluster(2, pin_cores=True, threads=1)`), against the same model on
one such worker. Every configuration runs in its own chief process
(connecting to a cluster is process-wide); the workers are started once
and shared. Configurations:

- `pipelined_2w`: the pipelined schedule, block k on worker k (goal: 1.8x
  to 2.0x faster than `synchronous_1w`).
- `synchronous_2w`: block k on worker k, block 1 waits for block 0.
- `synchronous_1w`: both blocks on worker 0.
- `backprop_1w`: the network trained end to end on worker 0.

Figures: `epoch_seconds`, the median time of an epoch of `--epoch_steps`
batches (a pipelined epoch fills and drains its pipeline), and
`step_seconds`, the steady-state time of one more batch: (epoch time -
time of a one-batch epoch) / (epoch_steps - 1), so that per-epoch costs
and the pipeline's fill and drain cancel. Medians over `--repeats` runs,
after one untimed run of each (tracing). Ratios are against
`synchronous_1w` and `backprop_1w` of the same run.

`--api=greedy` trains a `localgrad.GreedyModel(..., devices=...)` with
`GreedySchedule("pipelined" | "parallel")`. `--api=keras` needs no
placement support in GreedyModel: the two blocks are plain Keras models
with their own heads, each step a `tf.function` placed on its worker;
"pipelined" dispatches both blocks' steps at once from two threads (block
1 on block 0's previous output), "synchronous" one after the other.

The chief process needs a core too: on a 2-core machine it shares them
with the workers; its work (dispatch, data) is small next to a step.

Run on an idle machine (about 30 minutes on 2 CPU cores):

    python bench/pipeline_speed.py --models=vgg19,resnet50 \
        --output=bench/results/pipeline_speed.json

Smoke run at a tiny size (`--api=keras`, no figures to keep):

    python bench/pipeline_speed.py --api=keras --models=vgg11 --width=0.0625 \
        --batch_size=8 --repeats=1 --epoch_steps=3 --output=/tmp/speed.json
"""

import concurrent.futures
import json
import os
import statistics
import subprocess
import sys
import time

from absl import app, flags

flags.DEFINE_list("models", ["vgg19", "resnet50"], "Networks to measure.")
flags.DEFINE_float("width", 0.5, "Network width.")
flags.DEFINE_integer("image_size", 32, "Input height and width.")
flags.DEFINE_integer("batch_size", 64, "Batch size of a training step.")
flags.DEFINE_string("heads", "mlp_sr", "Auxiliary head of block 0.")
flags.DEFINE_integer("repeats", 5, "Timed runs of every epoch length.")
flags.DEFINE_integer("epoch_steps", 30, "Batches of the timed epoch (>= 2).")
flags.DEFINE_enum("api", "greedy", ["greedy", "keras"], "What trains.")
flags.DEFINE_string("output", "", "Where to write the JSON results.")
flags.DEFINE_string("one", "", "Internal: measure one configuration.")
flags.DEFINE_string("cluster", "", "Internal: the workers' addresses.")
FLAGS = flags.FLAGS
# The flags a configuration's process needs.
RUN_FLAGS = (
    "api",
    "width",
    "image_size",
    "batch_size",
    "heads",
    "repeats",
    "epoch_steps",
)

CONFIGURATIONS = {
    # name: (schedule, tasks of block 0 and block 1, number of blocks)
    "pipelined_2w": ("pipelined", (0, 1), 2),
    "synchronous_2w": ("synchronous", (0, 1), 2),
    "synchronous_1w": ("synchronous", (0, 0), 2),
    "backprop_1w": ("synchronous", (0,), 1),
}
NUM_CLASSES = 10


def epoch_and_step_seconds(run_epoch, num_batches, repeats):
    """Times `run_epoch(n)` (one epoch of the first n batches).

    Returns:
        `(epoch_seconds, step_seconds)`: the median time of an epoch of
        `num_batches`, and (that - the median time of a one-batch epoch) /
        (num_batches - 1), the steady-state time of a batch.
    """

    def median(num):
        run_epoch(num)  # Untimed: tracing, first transfers.
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            run_epoch(num)
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    whole = median(num_batches)
    return whole, (whole - median(1)) / (num_batches - 1)


def measure(model_name, name, cluster):
    """Measures configuration `name` of `model_name` in this process."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import localgrad

    schedule, tasks, num_blocks = CONFIGURATIONS[name]
    workers = localgrad.distribute.connect(cluster, timeout=120)
    devices = [workers[task] for task in tasks]
    measure_api = _greedy_figures if FLAGS.api == "greedy" else _keras_figures
    with localgrad.distribute.reporting_lost_workers():
        figures = measure_api(model_name, schedule, devices, num_blocks)
    return dict(figures, configuration=name, devices=devices)


def random_data(steps):
    """`steps` batches of random images and labels, as two arrays."""
    import numpy as np

    rng = np.random.default_rng(0)
    size = FLAGS.image_size
    x = rng.normal(size=(steps * FLAGS.batch_size, size, size, 3))
    y = rng.integers(0, NUM_CLASSES, size=steps * FLAGS.batch_size)
    return x.astype("float32"), y.astype("int32")


def build_network(model_name):
    """The benchmark's `model_name` network (`--width`, `--image_size`)."""
    import keras

    import localgrad

    keras.utils.set_random_seed(0)
    size = FLAGS.image_size
    return localgrad.models.build(
        model_name, (size, size, 3), NUM_CLASSES, width=FLAGS.width
    )


def greedy_model(model_name, devices, num_blocks):
    """The benchmark's compiled GreedyModel, block k on `devices[k]`.

    Its blocks are balanced by compute (FLOPs) and end in `--heads`.
    """
    import keras

    import localgrad

    model = localgrad.GreedyModel(
        build_network(model_name),
        num_blocks=num_blocks,
        heads=FLAGS.heads,
        balance="compute" if num_blocks > 1 else None,
        balance_batch_size=FLAGS.batch_size,
        devices=devices,
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def _greedy_figures(model_name, schedule, devices, num_blocks):
    """GreedyModel with block placement (the core's `devices=`)."""
    import localgrad

    model = greedy_model(model_name, devices, num_blocks)
    mode = "pipelined" if schedule == "pipelined" else "parallel"
    callbacks = [localgrad.callbacks.GreedySchedule(mode)]
    x, y = random_data(FLAGS.epoch_steps)

    def fit_epoch(num_batches):
        examples = num_batches * FLAGS.batch_size
        model.fit(
            x[:examples],
            y[:examples],
            batch_size=FLAGS.batch_size,
            epochs=1,
            shuffle=False,
            callbacks=callbacks,
            verbose=0,
        )

    epoch_seconds, step_seconds = epoch_and_step_seconds(
        fit_epoch, FLAGS.epoch_steps, FLAGS.repeats
    )
    return {
        "boundaries": model.boundaries,
        "step_seconds": step_seconds,
        "epoch_seconds": epoch_seconds,
    }


def _keras_figures(model_name, schedule, devices, num_blocks):
    """Two plain Keras blocks, each step a tf.function on its worker."""
    import localgrad

    network = build_network(model_name)
    if num_blocks == 1:
        ends = [network.num_units]
    else:
        costs = [
            p.flops
            for p in localgrad.profile(network, batch_size=FLAGS.batch_size)
        ]
        ends = localgrad.boundaries.balanced_boundaries(costs, 2) + [
            network.num_units
        ]
    steps = _block_steps(model_name, devices, ends)
    x, y = random_data(FLAGS.epoch_steps)
    batches = [
        (x[i : i + FLAGS.batch_size], y[i : i + FLAGS.batch_size])
        for i in range(0, len(x), FLAGS.batch_size)
    ]
    run = _pipelined if schedule == "pipelined" else _synchronous
    epoch_seconds, step_seconds = epoch_and_step_seconds(
        lambda num_batches: run(steps, batches[:num_batches]),
        FLAGS.epoch_steps,
        FLAGS.repeats,
    )
    return {
        "boundaries": ends[:-1],
        "step_seconds": step_seconds,
        "epoch_seconds": epoch_seconds,
    }


def _block_steps(model_name, devices, ends):
    import keras
    import tensorflow as tf

    import localgrad

    steps, start = [], 0
    for device, end in zip(devices, ends):
        with tf.device(device):  # The block's variables live there.
            # Only units start..end are used.
            network = build_network(model_name)
            if end == network.num_units:
                head = network.classifier
            else:
                shape = network.unit_output_shapes[end - 1]
                head = localgrad.heads.build(FLAGS.heads, shape, NUM_CLASSES)
            variables = [
                v
                for unit in network.units[start:end]
                for v in unit.trainable_variables
            ] + head.trainable_variables
            optimizer = keras.optimizers.SGD(0.01, momentum=0.9)
            optimizer.build(variables)
        steps.append(
            _block_step(device, network, head, start, end, variables, optimizer)
        )
        start = end
    return steps


def _block_step(device, network, head, start, end, variables, optimizer):
    import keras
    import tensorflow as tf

    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def step(features, labels):
        with tf.device(device):
            with tf.GradientTape() as tape:
                outputs = network.call_units(
                    tf.stop_gradient(features), start, end, training=True
                )
                loss = loss_fn(labels, head(outputs, training=True))
            gradients = tape.gradient(loss, variables)
            optimizer.apply_gradients(zip(gradients, variables))
            return tf.stop_gradient(outputs), loss

    return step


def _synchronous(steps, batches):
    for x, y in batches:
        features = x
        for step in steps:
            features, loss = step(features, y)
        loss.numpy()  # Waits for the last block.


def _pipelined(steps, batches):
    """Block k trains at step t on block k-1's output of step t-1; all
    blocks' steps are dispatched at once, each from its own thread."""
    buffers = [None] * len(steps)  # What block k trains on next.
    with concurrent.futures.ThreadPoolExecutor(len(steps)) as pool:
        for t in range(len(batches) + len(steps) - 1):
            buffers[0] = batches[t] if t < len(batches) else None
            running = [
                pool.submit(step, *buffers[k]) if buffers[k] else None
                for k, step in enumerate(steps)
            ]
            results = [r.result() if r else None for r in running]
            for k in range(len(steps) - 1, 0, -1):
                previous = results[k - 1]
                labels = buffers[k - 1][1] if buffers[k - 1] else None
                buffers[k] = (previous[0], labels) if previous else None
            for result in results:
                if result:
                    result[1].numpy()


def run_in_subprocess(script, one, cluster, flag_names):
    """Runs `script --one=<one>` in a process of its own.

    The process gets the cluster and the current values of `flag_names`;
    its last line of output is the JSON of its figures, returned decoded.
    """
    command = [sys.executable, script, f"--one={one}", f"--cluster={cluster}"]
    command += [f"--{name}={FLAGS[name].value}" for name in flag_names]
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"{one} failed:\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main(argv):
    del argv
    if FLAGS.epoch_steps < 2:
        raise app.UsageError("--epoch_steps must be at least 2.")
    if FLAGS.one:
        model_name, name = FLAGS.one.split(",")
        print(json.dumps(measure(model_name, name, FLAGS.cluster)))
        return
    import localgrad

    results = []
    with localgrad.distribute.LocalCluster(
        2, pin_cores=True, threads=1
    ) as workers:
        for model_name in FLAGS.models:
            rows = {
                name: run_in_subprocess(
                    __file__, f"{model_name},{name}", workers.cluster, RUN_FLAGS
                )
                for name in CONFIGURATIONS
            }
            for name, row in rows.items():
                row["model"] = model_name
                row["speedup_vs_synchronous_1w"] = (
                    rows["synchronous_1w"]["step_seconds"] / row["step_seconds"]
                )
                row["epoch_vs_backprop_1w"] = (
                    row["epoch_seconds"] / rows["backprop_1w"]["epoch_seconds"]
                )
                results.append(row)
                print(
                    f"{model_name:9s} {name:15s} step "
                    f"{row['step_seconds'] * 1e3:8.1f} ms "
                    f"({row['speedup_vs_synchronous_1w']:.2f}x sync 1 worker)"
                    f"  epoch {row['epoch_seconds']:7.2f} s "
                    f"({row['epoch_vs_backprop_1w']:.2f}x backprop)",
                    flush=True,
                )
    if FLAGS.output:
        os.makedirs(os.path.dirname(FLAGS.output) or ".", exist_ok=True)
        with open(FLAGS.output, "w") as file:
            json.dump(
                {
                    "api": FLAGS.api,
                    "width": FLAGS.width,
                    "image_size": FLAGS.image_size,
                    "batch_size": FLAGS.batch_size,
                    "heads": FLAGS.heads,
                    "cpus": os.cpu_count(),
                    "results": results,
                },
                file,
                indent=2,
            )


if __name__ == "__main__":
    app.run(main)
