"""Asynchronous DGL: test accuracy against buffer size and slowdown.

DGL §4's buffer experiment (Belilovsky et al., ICML 2020) on
Fashion-MNIST: K = 6 one-unit blocks; block `--slowed_block` (3 by
default, as in the released code's run) is slowed by a factor s; every
block reads its input from a replay buffer of M batches
(`GreedySchedule("async", buffer_size=M, slowdown={3: s})`). The grid is
M ∈ {1, 5, 30} × s ∈ {1.0, 1.11, 1.5, 2.0} over 3 seeds, plus synchronous
DGL (the parallel schedule) on the same network and budget as the bar:
the goal is M = 30, s = 1.11 within 0.5 points of it.

Networks (`--model`): `cnn6`, the experiment's 6 conv-BN-ReLU units
(128, 128, 256, 256, 512, 512 channels; 2×2 max-pooling after units 2 and
4; `--width` scales the channels), or the configs' `vgg11` (`--width`
0.25), cut into 6 blocks. Training as in the released run: SGD lr 0.1,
momentum 0.9, weight decay 5e-4, lr ÷ 5 every 15 epochs, 50 epochs,
batch 128. The learning-rate schedule counts the optimizer's own steps,
and every block has its own optimizer, so under the asynchronous schedule
each block's rate drops at its own 15th, 30th, 45th epoch.

Writes a JSON of every run (re-running skips the runs already there), a
text table (mean ± std over seeds) and a plot. Needs the asynchronous
schedule with `block_epochs=--epochs` (every block trains that many of
its own epochs; `fit` runs `schedule.total_epochs(6)` epochs at most and
stops when all blocks are done); `--grid=sync` runs only the baseline.
Parts of the grid may run at once, each with its own `--output` (e.g.
`--grid=async --buffer_sizes=1`); `--merge=part.json,...` then adds their
runs to `--output`, after checking they had the same budget flags.

Run (Fashion-MNIST from `apt-get install -y dataset-fashion-mnist`; an
idle machine: 39 runs of 50 epochs):

    python bench/async_dgl.py --output=bench/results/async_dgl.json
    python bench/async_dgl.py --model=vgg11 --width=0.25 \
        --output=bench/results/async_dgl_vgg11.json
    # smoke run, seconds: a tiny net on 512 examples
    python bench/async_dgl.py --width=0.0625 --epochs=1 --train_examples=512 \
        --buffer_sizes=1 --slowdowns=1.11 --seeds=0 --output=/tmp/a.json
"""

import json
import os
import statistics

import keras
from absl import app, flags
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import localgrad
from localgrad import train_setup
from localgrad.callbacks import GreedySchedule

NUM_BLOCKS = 6
CNN6_CHANNELS = (128, 128, 256, 256, 512, 512)
CNN6_POOL_AFTER = (1, 3)  # units (0-based) followed by 2×2 max-pooling

flags.DEFINE_enum("grid", "all", ["all", "sync", "async"], "Runs to do.")
flags.DEFINE_list("buffer_sizes", ["1", "5", "30"], "Buffer sizes M.")
flags.DEFINE_list("slowdowns", ["1.0", "1.11", "1.5", "2.0"], "Factors s.")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds of every run.")
flags.DEFINE_integer("slowed_block", 3, "The slowed block (0..5).")
flags.DEFINE_enum(
    "sampling",
    "priority_lifo",
    ["priority_lifo", "fifo", "uniform"],
    "Buffer sampling policy.",
)
flags.DEFINE_integer(
    "max_reuse", 0, "Reads of a batch before it is dropped (0: no limit)."
)
flags.DEFINE_enum("model", "cnn6", ["cnn6", "vgg11"], "Network.")
flags.DEFINE_float("width", 1.0, "Channel multiplier.")
flags.DEFINE_integer("epochs", 50, "Epochs.")
flags.DEFINE_integer("lr_drop_every", 15, "Epochs between lr ÷ 5.")
flags.DEFINE_integer("batch_size", 128, "Batch size.")
flags.DEFINE_integer(
    "train_examples",
    0,
    "Use only the first n training examples (0: all), for smoke runs.",
)
flags.DEFINE_string("output", "bench/results/async_dgl.json", "JSON file.")
flags.DEFINE_list(
    "merge",
    [],
    "JSON files of the same grid and budget (e.g. parts run in parallel, "
    "each with its own --output and --buffer_sizes) whose runs to add to "
    "--output first.",
)
FLAGS = flags.FLAGS

# The flags that make two runs comparable.
BUDGET_FLAGS = (
    "model",
    "width",
    "epochs",
    "lr_drop_every",
    "batch_size",
    "train_examples",
    "sampling",
    "max_reuse",
    "slowed_block",
)


def build_network(seed):
    """The network of the runs, with `NUM_BLOCKS` or more units."""
    keras.utils.set_random_seed(seed)
    if FLAGS.model == "vgg11":
        return localgrad.models.build("vgg11", (28, 28, 1), 10, FLAGS.width)
    layers, unit_ends = [keras.Input((28, 28, 1))], []
    for unit, channels in enumerate(CNN6_CHANNELS):
        layers += [
            keras.layers.Conv2D(
                max(1, round(channels * FLAGS.width)),
                3,
                padding="same",
                use_bias=False,
            ),
            keras.layers.BatchNormalization(momentum=0.9),
            keras.layers.ReLU(),
        ]
        if unit in CNN6_POOL_AFTER:
            layers.append(keras.layers.MaxPooling2D())
        unit_ends.append(len(layers) - 1)  # the Input is not a layer
    layers += [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10)]
    return localgrad.Network.from_sequential(
        keras.Sequential(layers), unit_ends=unit_ends
    )


def train(schedule, seed, data):
    """Trains the network with one schedule; returns the test accuracy."""
    (x, y), (x_test, y_test) = data
    model = localgrad.GreedyModel(
        build_network(seed), num_blocks=NUM_BLOCKS, heads="mlp_sr"
    )
    steps_per_epoch = -(-len(x) // FLAGS.batch_size)
    drops = range(FLAGS.lr_drop_every, FLAGS.epochs, FLAGS.lr_drop_every)
    learning_rate = 0.1
    if drops:
        learning_rate = keras.optimizers.schedules.PiecewiseConstantDecay(
            [d * steps_per_epoch for d in drops],
            [0.1 / 5**k for k in range(len(drops) + 1)],
        )
    model.compile(
        optimizer=train_setup.build_optimizer(
            "sgd", learning_rate, momentum=0.9, weight_decay=5e-4
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(
        x,
        y,
        batch_size=FLAGS.batch_size,
        # Async: every block trains FLAGS.epochs of its own; fit stops when
        # all have (a slowed block needs more fresh batches than block 0).
        epochs=schedule.total_epochs(NUM_BLOCKS)
        if schedule.mode == "async"
        else FLAGS.epochs,
        callbacks=[schedule],
        verbose=2,
    )
    accuracy = model.evaluate(x_test, y_test, return_dict=True, verbose=0)
    keras.backend.clear_session()
    return 100 * float(accuracy["accuracy"])


def schedules():
    """`{run name: (buffer size, slowdown) or None for synchronous}`."""
    runs = {}
    if FLAGS.grid in ("all", "sync"):
        runs["sync"] = None
    if FLAGS.grid in ("all", "async"):
        for size in map(int, FLAGS.buffer_sizes):
            for slowdown in map(float, FLAGS.slowdowns):
                runs[f"M{size}_s{slowdown:g}"] = (size, slowdown)
    return runs


def make_schedule(setting, seed):
    if setting is None:
        return GreedySchedule("parallel")
    size, slowdown = setting
    return GreedySchedule(
        "async",
        buffer_size=size,
        sampling=FLAGS.sampling,
        max_reuse=FLAGS.max_reuse or None,
        slowdown={FLAGS.slowed_block: slowdown},
        seed=seed,
        block_epochs=FLAGS.epochs,
    )


def table(results):
    """Mean ± std of the test accuracy, one row per M, one column per s."""

    def cell(run):
        values = results.get(run, {}).values()
        if not values:
            return "-"
        return f"{statistics.mean(values):.2f} ± {_spread(values):.2f}"

    slowdowns = [float(s) for s in FLAGS.slowdowns]
    lines = ["M \\ s  " + "".join(f"{s:>16g}" for s in slowdowns)]
    for size in map(int, FLAGS.buffer_sizes):
        lines.append(
            f"{size:<7d}"
            + "".join(f"{cell(f'M{size}_s{s:g}'):>16s}" for s in slowdowns)
        )
    lines.append(f"synchronous DGL: {cell('sync')}")
    return "\n".join(lines)


def plot(results, path):
    """Accuracy against slowdown, one line per M, sync DGL dashed."""
    figure = Figure(figsize=(6, 4))
    axes = figure.add_subplot()
    slowdowns = [float(s) for s in FLAGS.slowdowns]
    for size in map(int, FLAGS.buffer_sizes):
        runs = [results.get(f"M{size}_s{s:g}", {}) for s in slowdowns]
        points = [(s, list(r.values())) for s, r in zip(slowdowns, runs) if r]
        if points:
            axes.errorbar(
                [s for s, _ in points],
                [statistics.mean(v) for _, v in points],
                yerr=[_spread(v) for _, v in points],
                marker="o",
                capsize=3,
                label=f"M = {size}",
            )
    if results.get("sync"):
        axes.axhline(
            statistics.mean(results["sync"].values()),
            linestyle="--",
            color="gray",
            label="synchronous DGL",
        )
    axes.set_xlabel(f"slowdown of block {FLAGS.slowed_block}")
    axes.set_ylabel("test accuracy (%)")
    axes.set_title(f"Asynchronous DGL, Fashion-MNIST, {FLAGS.model}")
    axes.legend()
    FigureCanvasAgg(figure).print_png(path)


def _spread(values):
    values = list(values)
    return statistics.stdev(values) if len(values) > 1 else 0.0


def main(argv):
    del argv
    localgrad.asynchrony.validate_slowdown(
        {FLAGS.slowed_block: 1.0}, NUM_BLOCKS
    )
    train_data = localgrad.data.load_arrays("fashion_mnist", "train")
    if FLAGS.train_examples:
        train_data = tuple(a[: FLAGS.train_examples] for a in train_data)
    data = (train_data, localgrad.data.load_arrays("fashion_mnist", "test"))
    results = {}
    if os.path.exists(FLAGS.output):
        results = _results_of_this_budget(FLAGS.output)
    for path in FLAGS.merge:
        for run, seeds in _results_of_this_budget(path).items():
            for seed, accuracy in seeds.items():
                results.setdefault(run, {}).setdefault(seed, accuracy)
    os.makedirs(os.path.dirname(FLAGS.output) or ".", exist_ok=True)
    _save(results)
    for run, setting in schedules().items():
        for seed in FLAGS.seeds:
            if seed in results.get(run, {}):
                continue
            accuracy = train(make_schedule(setting, int(seed)), int(seed), data)
            results.setdefault(run, {})[seed] = accuracy
            print(f"{run} seed {seed}: {accuracy:.2f} %", flush=True)
            _save(results)
    text = table(results)
    print(text)
    stem = os.path.splitext(FLAGS.output)[0]
    with open(stem + ".txt", "w") as file:
        file.write(text + "\n")
    plot(results, stem + ".png")


def _budget(flags_text):
    """`{flag: value}` of the BUDGET_FLAGS in a `flags_into_string()`."""
    values = dict(
        line[2:].split("=", 1)
        for line in flags_text.splitlines()
        if line.startswith("--") and "=" in line
    )
    return {name: values.get(name) for name in BUDGET_FLAGS}


def _results_of_this_budget(path):
    """The results in `path`, after checking they share this budget."""
    with open(path) as file:
        saved = json.load(file)
    theirs, ours = _budget(saved["flags"]), _budget(FLAGS.flags_into_string())
    differ = [
        f"--{k}={theirs[k]} (here {ours[k]})"
        for k in ours
        if theirs[k] != ours[k]
    ]
    if differ:
        raise app.UsageError(
            f"{path} was run with {', '.join(differ)}: its runs are not "
            "comparable with these; use the same budget flags or another "
            "--output."
        )
    return saved["results"]


def _save(results):
    """Writes --output atomically: a killed run never leaves half a file."""
    partial = FLAGS.output + ".partial"
    with open(partial, "w") as file:
        json.dump(
            {"flags": FLAGS.flags_into_string(), "results": results},
            file,
            indent=2,
        )
    os.replace(partial, FLAGS.output)


if __name__ == "__main__":
    app.run(main)
