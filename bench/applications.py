"""A wrapped keras.applications model trained greedily: memory and accuracy.

`keras.applications.MobileNetV2` (width multiplier `--alpha`, random
initialization, BatchNorm momentum `--bn_momentum`: keras.applications'
0.999 leaves the moving statistics far from the batch statistics after a
few epochs, for backprop and greedy alike) on Fashion-MNIST padded to 32×32
with the background value,
wrapped with `localgrad.Network.from_functional` (every cut point a unit),
trained two ways with the same optimizer and epochs:

- `backprop`: K = 1, end to end.
- `greedy`: K = `--num_blocks` blocks, memory-balanced split
  (`balance="memory"` at the training batch size), `--heads` heads,
  parallel schedule.

Figures:

- `peak_bytes`: growth of TensorFlow's CPU allocator peak over one training
  step after warm-up (`tf.config.experimental.get_memory_info("CPU:0")`,
  with `TF_CPU_ALLOCATOR_USE_BFC=true`), each run in its own process;
  `peak_vs_backprop` divides by backprop's.
- `test_accuracy`: the network's own classifier on the 10,000 test images
  after `--epochs` epochs (SGD momentum 0.9, cosine decay), per seed, with
  mean and standard deviation; for greedy runs also every block's head.

Run (Fashion-MNIST from `apt-get install -y dataset-fashion-mnist`; about
an hour on 2 idle CPU cores):

    python bench/applications.py --seeds=0,1,2 --epochs=3 \
        --output=bench/results/applications.json

Smoke run (a minute): `--train_examples=256 --test_examples=128
--epochs=1 --seeds=0 --batch_size=32 --output=/tmp/applications.json`.
"""

import json
import os
import statistics
import subprocess
import sys

from absl import app, flags

RUNS = ("backprop", "greedy")
# The flags a run depends on: passed on to each run's process, and saved.
RUN_FLAGS = (
    "epochs",
    "batch_size",
    "alpha",
    "num_blocks",
    "heads",
    "learning_rate",
    "bn_momentum",
    "train_examples",
    "test_examples",
)

flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds of the accuracy runs.")
flags.DEFINE_integer("epochs", 3, "Training epochs.")
flags.DEFINE_integer("batch_size", 128, "Training batch size.")
flags.DEFINE_float("alpha", 0.35, "MobileNetV2 width multiplier.")
flags.DEFINE_integer("num_blocks", 4, "K of the greedy runs.")
flags.DEFINE_string("heads", "mlp_sr", "Auxiliary head of every block.")
flags.DEFINE_float("learning_rate", 0.05, "Initial SGD learning rate.")
flags.DEFINE_float(
    "bn_momentum", 0.9, "BatchNorm momentum (0: keras.applications' 0.999)."
)
flags.DEFINE_integer("train_examples", 0, "Training images (0: all).")
flags.DEFINE_integer("test_examples", 0, "Test images (0: all).")
flags.DEFINE_string("output", "", "Where to write the JSON results.")
flags.DEFINE_string("one", "", "Internal: one `memory|accuracy,run,seed`.")
FLAGS = flags.FLAGS


def padded(split, limit):
    """Fashion-MNIST images padded to 32×32 with the background value."""
    import numpy as np

    import localgrad

    x, y = localgrad.data.load_arrays("fashion_mnist", split)
    if limit:
        x, y = x[:limit], y[:limit]
    background = float(x.min())
    x = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)), constant_values=background)
    return x.astype("float32"), y


def compiled_model(run, seed, steps_per_epoch):
    """The wrapped MobileNetV2 as a compiled GreedyModel (K = 1 or K)."""
    import keras

    import localgrad

    keras.utils.set_random_seed(seed)
    base = keras.applications.MobileNetV2(
        weights=None,
        input_shape=(32, 32, 1),
        alpha=FLAGS.alpha,
        classes=10,
        classifier_activation=None,
    )
    if FLAGS.bn_momentum:
        for layer in base.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = FLAGS.bn_momentum
    network = localgrad.Network.from_functional(base)
    if run == "backprop":
        model = localgrad.GreedyModel(network, num_blocks=1)
    else:
        model = localgrad.GreedyModel(
            network,
            num_blocks=FLAGS.num_blocks,
            heads=FLAGS.heads,
            balance="memory",
            balance_batch_size=FLAGS.batch_size,
        )
    schedule = keras.optimizers.schedules.CosineDecay(
        FLAGS.learning_rate, max(FLAGS.epochs * steps_per_epoch, 1)
    )
    model.compile(
        optimizer=keras.optimizers.SGD(schedule, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def memory(run):
    """Peak allocator growth over one training step (after warm-up)."""
    import tensorflow as tf

    model = compiled_model(run, 0, 1)
    x = tf.random.normal((FLAGS.batch_size, 32, 32, 1))
    y = tf.random.uniform((FLAGS.batch_size,), 0, 10, dtype=tf.int32)
    for _ in range(2):
        model.train_on_batch(x, y)
    before = tf.config.experimental.get_memory_info("CPU:0")["current"]
    tf.config.experimental.reset_memory_stats("CPU:0")
    model.train_on_batch(x, y)
    peak = tf.config.experimental.get_memory_info("CPU:0")["peak"]
    return {
        "run": run,
        "num_units": model.network.num_units,
        "boundaries": model.boundaries,
        "peak_bytes": int(peak - before),
    }


def accuracy(run, seed):
    """Trains one run with one seed; returns its test accuracies."""
    import localgrad

    x, y = padded("train", FLAGS.train_examples)
    x_test, y_test = padded("test", FLAGS.test_examples)
    steps = -(-len(x) // FLAGS.batch_size)
    model = compiled_model(run, seed, steps)
    model.fit(
        x,
        y,
        batch_size=FLAGS.batch_size,
        epochs=FLAGS.epochs,
        verbose=0,
        callbacks=[localgrad.callbacks.GreedySchedule("parallel")],
    )
    logs = model.evaluate(
        x_test, y_test, batch_size=500, verbose=0, return_dict=True
    )
    return {
        "run": run,
        "seed": seed,
        "test_accuracy": float(logs["accuracy"]),
        "block_accuracies": [
            float(logs[f"block_{k}_accuracy"]) for k in range(model.num_blocks)
        ],
    }


def in_subprocess(kind, run, seed):
    command = [sys.executable, __file__, f"--one={kind},{run},{seed}"]
    command += [f"--{name}={FLAGS[name].value}" for name in RUN_FLAGS]
    # The CPU allocator keeps the statistics `memory` reads only as BFC.
    env = dict(
        os.environ, TF_CPP_MIN_LOG_LEVEL="3", TF_CPU_ALLOCATOR_USE_BFC="true"
    )
    output = subprocess.run(
        command, check=True, capture_output=True, text=True, env=env
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main(argv):
    del argv
    if FLAGS.one:
        kind, run, seed = FLAGS.one.split(",")
        if kind == "memory":
            print(json.dumps(memory(run)))
        else:
            print(json.dumps(accuracy(run, int(seed))))
        return
    peaks = {run: in_subprocess("memory", run, 0) for run in RUNS}
    for run in RUNS:
        peaks[run]["peak_vs_backprop"] = (
            peaks[run]["peak_bytes"] / peaks["backprop"]["peak_bytes"]
        )
        print(
            f"{run:9s} memory peak {peaks[run]['peak_bytes'] / 2**20:8.1f} "
            f"MiB ({peaks[run]['peak_vs_backprop']:.2f}x backprop), "
            f"{peaks[run]['num_units']} units, boundaries "
            f"{peaks[run]['boundaries']}",
            flush=True,
        )
    runs = {run: [] for run in RUNS}
    for seed in map(int, FLAGS.seeds):
        for run in RUNS:
            row = in_subprocess("accuracy", run, seed)
            runs[run].append(row)
            print(
                f"{run:9s} seed {seed}: test accuracy "
                f"{row['test_accuracy']:.4f}, blocks "
                f"{[round(a, 4) for a in row['block_accuracies']]}",
                flush=True,
            )
    summary = {}
    for run, rows in runs.items():
        values = [row["test_accuracy"] for row in rows]
        summary[run] = {
            "mean": statistics.mean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        }
        print(
            f"{run:9s} test accuracy {100 * summary[run]['mean']:.2f} ± "
            f"{100 * summary[run]['std']:.2f} % over {len(values)} seeds",
            flush=True,
        )
    if FLAGS.output:
        os.makedirs(os.path.dirname(FLAGS.output) or ".", exist_ok=True)
        settings = {name: FLAGS[name].value for name in RUN_FLAGS + ("seeds",)}
        with open(FLAGS.output, "w") as file:
            json.dump(
                {
                    "model": "keras.applications.MobileNetV2",
                    "data": "fashion_mnist padded to 32x32",
                    "settings": settings,
                    "memory": peaks,
                    "accuracy": runs,
                    "summary": summary,
                },
                file,
                indent=2,
            )


if __name__ == "__main__":
    app.run(main)
