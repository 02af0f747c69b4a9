"""Peak training-step memory and step time: greedy splits against backprop.

Every configuration runs in its own process, so that one run's allocations
and compiled functions cannot touch another's peak. A configuration's figures:

- `peak`: growth of TensorFlow's CPU allocator peak over one training step
  (`tf.config.experimental.get_memory_info("CPU:0")`), after warm-up.
- `bound`: the lower bound of a greedy step, the largest growth of a step
  that trains one block alone (`model.trained_blocks = [k]`).
- `time_vs_backprop`: the median, over interleaved pairs of steps, of the
  greedy step's time divided by the backprop step's, both models living in
  the same process (so that load from other processes hits both alike);
  `step_seconds` is the greedy step's median time.

Memory is measured before the backprop twin is built. Ratios of peaks are
against backprop (K = 1) measured in its own process in the same run.

Run (about 40 minutes on 2 CPU cores):

    python bench/memory_speed.py --models=vgg19,resnet101 --batch_size=128 \
        --output=bench/results/memory_speed.json
"""

import json
import os
import statistics
import subprocess
import sys
import time

from absl import app, flags

flags.DEFINE_list("models", ["vgg19", "resnet101"], "Networks to measure.")
flags.DEFINE_list("num_blocks", ["2", "4", "8"], "Greedy block counts K.")
flags.DEFINE_list("splits", ["uniform", "memory", "compute"], "Splits.")
flags.DEFINE_integer("batch_size", 128, "Batch size of a training step.")
flags.DEFINE_float("width", 1.0, "Network width.")
flags.DEFINE_string("heads", "mlp_sr", "Auxiliary head of every block.")
flags.DEFINE_integer("steps", 5, "Timed (pairs of) steps per configuration.")
flags.DEFINE_string("output", "", "Where to write the JSON results.")
flags.DEFINE_string("one", "", "Internal: measure one configuration.")
FLAGS = flags.FLAGS


def measure(model_name, num_blocks, split):
    """Measures one configuration in this process; returns a dict."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    model = _compiled_model(model_name, num_blocks, split)
    x = tf.random.normal((FLAGS.batch_size, 32, 32, 3))
    y = tf.random.uniform((FLAGS.batch_size,), 0, 10, dtype=tf.int32)

    def step_growth():
        before = tf.config.experimental.get_memory_info("CPU:0")["current"]
        tf.config.experimental.reset_memory_stats("CPU:0")
        model.train_on_batch(x, y)
        peak = tf.config.experimental.get_memory_info("CPU:0")["peak"]
        return peak - before

    for _ in range(2):
        model.train_on_batch(x, y)
    peak = step_growth()
    bound = peak
    if num_blocks > 1:
        block_peaks = []
        for block in range(num_blocks):
            model.trained_blocks = [block]
            model.train_on_batch(x, y)
            block_peaks.append(step_growth())
        bound = max(block_peaks)
        model.trained_blocks = None
    result = {
        "model": model_name,
        "num_blocks": num_blocks,
        "split": split,
        "boundaries": model.boundaries,
        "peak_bytes": int(peak),
        "bound_bytes": int(bound),
    }
    backprop = None
    if num_blocks > 1:
        backprop = _compiled_model(model_name, 1, "uniform")
        backprop.train_on_batch(x, y)
    times, ratios = [], []
    for _ in range(FLAGS.steps):
        seconds = _timed_step(model, x, y)
        times.append(seconds)
        if backprop is not None:
            ratios.append(seconds / _timed_step(backprop, x, y))
    result["step_seconds"] = statistics.median(times)
    result["time_vs_backprop"] = statistics.median(ratios) if ratios else 1.0
    return result


def _compiled_model(model_name, num_blocks, split):
    import keras

    import localgrad

    keras.utils.set_random_seed(0)
    network = localgrad.models.build(
        model_name, (32, 32, 3), 10, width=FLAGS.width
    )
    model = localgrad.GreedyModel(
        network,
        num_blocks=num_blocks,
        heads=FLAGS.heads,
        balance=None if split == "uniform" else split,
        balance_batch_size=FLAGS.batch_size,
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def _timed_step(model, x, y):
    start = time.perf_counter()
    model.train_on_batch(x, y)
    return time.perf_counter() - start


def run_in_subprocess(model_name, num_blocks, split):
    command = [
        sys.executable,
        __file__,
        f"--one={model_name},{num_blocks},{split}",
        f"--batch_size={FLAGS.batch_size}",
        f"--width={FLAGS.width}",
        f"--heads={FLAGS.heads}",
        f"--steps={FLAGS.steps}",
    ]
    output = subprocess.run(
        command, check=True, capture_output=True, text=True
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main(argv):
    del argv
    if FLAGS.one:
        name, blocks, split = FLAGS.one.split(",")
        print(json.dumps(measure(name, int(blocks), split)))
        return
    results = []
    for name in FLAGS.models:
        base = run_in_subprocess(name, 1, "uniform")
        base["split"] = "backprop"
        results.append(base)
        _print_row(base, base)
        for blocks in map(int, FLAGS.num_blocks):
            for split in FLAGS.splits:
                row = run_in_subprocess(name, blocks, split)
                row["peak_vs_backprop"] = row["peak_bytes"] / base["peak_bytes"]
                row["peak_vs_bound"] = row["peak_bytes"] / row["bound_bytes"]
                results.append(row)
                _print_row(row, base)
    if FLAGS.output:
        os.makedirs(os.path.dirname(FLAGS.output) or ".", exist_ok=True)
        with open(FLAGS.output, "w") as file:
            json.dump(
                {
                    "batch_size": FLAGS.batch_size,
                    "width": FLAGS.width,
                    "heads": FLAGS.heads,
                    "results": results,
                },
                file,
                indent=2,
            )


def _print_row(row, base):
    mib = 2**20
    print(
        f"{row['model']:10s} K={row['num_blocks']} {row['split']:9s} "
        f"peak {row['peak_bytes'] / mib:8.1f} MiB "
        f"({row['peak_bytes'] / base['peak_bytes']:.2f}x backprop, "
        f"{row['peak_bytes'] / row['bound_bytes']:.2f}x bound) "
        f"step {row['step_seconds']:.2f}s "
        f"({row['time_vs_backprop']:.2f}x backprop) "
        f"boundaries {row['boundaries']}",
        flush=True,
    )


if __name__ == "__main__":
    app.run(main)
