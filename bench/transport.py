"""Stagnation of greedy training, with and without transport regularization.

Karkar et al. (NeurIPS 2023) report that with many blocks and little data
greedy training stagnates: early blocks overfit and deeper blocks stop
improving test accuracy; a kinetic-energy (transport) term on each block's
local loss fixes that. This benchmark measures it on Fashion-MNIST with
10 % of the training set (a seeded random 6,000 examples) and the full test
set: ResNet-18 (K = 8) and ResNet-34 (K = 16) at width 0.25, one residual
unit per block, `cnn1` heads, the parallel and the multi-lap schedule,
without transport, with a fixed τ (τ = 1, halved for the first half of the
blocks: the paper's setting for many modules) and with the adaptive Uzawa
multiplier (step 1 every 50 steps), 3 seeds. `--transports=tau10` (any
`tau<value>`) adds a fixed, varying τ of another value.

Training as in the paper's code: SGD with momentum 0.9, weight decay 2e-4,
label smoothing 0.1, a cosine learning rate per block over the steps that
block trains. Parallel: every block trains `--epochs` epochs. Multi-lap:
`--laps` laps in which block k trains (`--epochs` + k · `--e2`) / laps
epochs, so with e2 = 0 each block gets the same epochs as in parallel.

Figures: the test accuracy of every block's head (the last block's is the
network's classifier) against depth, one line per variant (mean over
seeds), in `accuracy_by_block_k<K>.png`; each block's training accuracy in
its last epoch (multi-lap: its last epoch of the last lap) the same way, in
`training_accuracy_by_block_k<K>.png` (runs that logged it: a block that
fits its training data well but tests worse overfits; one that fits it
worse too is held back by something else); and in `transport.md` (the first
table printed too) a row per variant with the best and the last block's
accuracy, the fall from the one to the other and the last block against the
same schedule without transport, then each run's tables of every block's
mean test and training accuracy. Goal (issue 10): with transport accuracy
no longer falls with depth, and at K = 16 the last block beats the
unregularized last block by ≥ 1 point.

Every run is its own process (`--one`), so runs cannot share memory or
compiled functions. Each run's result (every head's test accuracy, and
each block's training logs of the last epoch it trained: loss, accuracy,
transport term and multiplier) is kept in `<output_dir>/runs/`:
started again with the same flags, the benchmark trains only the runs it
has not finished, and `--notrain` writes the table and plots from the
runs kept so far (the table counts each variant's seeds). A run also
checkpoints after every epoch
(`localgrad.callbacks.EpochCheckpoint`, in `<output_dir>/checkpoints/`,
deleted once its result is kept), so a run that was stopped resumes from
its last finished epoch; its remaining epochs then shuffle the data anew,
so its accuracies are not bit-identical to an unbroken run's.

Run (Fashion-MNIST from `apt-get install -y dataset-fashion-mnist`):

    python bench/transport.py --output_dir=bench/results/transport

Smoke run (about a minute of CPU per variant):

    python bench/transport.py --runs=resnet18:8 --schedules=parallel \
        --transports=tau --seeds=0 --train_fraction=0.005 --epochs=1 \
        --output_dir=/tmp/transport_smoke
"""

import hashlib
import json
import math
import os
import shutil
import statistics
import subprocess
import sys

from absl import app, flags, logging

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRANSPORTS = {
    "none": None,
    "tau": {"tau": 1.0, "varying": True},
    "uzawa": {"uzawa_step": 1.0, "uzawa_every": 50},
}
SCHEDULES = ("parallel", "multilap")
# The plots: the prefix of their file and of their keys in a variant's
# results (`per_block_mean`, `seeds`), and the accuracy they show.
PLOTS = {
    "": "Test accuracy of the block's head (%)",
    "training_": "Training accuracy, the block's last epoch (%)",
}

flags.DEFINE_list("runs", ["resnet18:8", "resnet34:16"], "model:K pairs.")
flags.DEFINE_list("schedules", list(SCHEDULES), "Schedules.")
flags.DEFINE_list(
    "transports",
    list(TRANSPORTS),
    f"Transport variants: {', '.join(TRANSPORTS)}, or tau<value> for a "
    "fixed, varying τ of that value (e.g. tau10).",
)
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds of every variant.")
flags.DEFINE_float("train_fraction", 0.1, "Share of the training set.")
flags.DEFINE_float("width", 0.25, "Network width.")
flags.DEFINE_integer("epochs", 10, "Epochs of each block (e1).")
flags.DEFINE_float("e2", 0.0, "Epochs each deeper block adds (multilap).")
flags.DEFINE_integer("laps", 2, "Laps of the multilap schedule.")
flags.DEFINE_integer("batch_size", 128, "Training batch size.")
flags.DEFINE_float("learning_rate", 0.1, "Peak learning rate.")
flags.DEFINE_string("output_dir", "/tmp/localgrad_bench_transport", "Out.")
flags.DEFINE_bool(
    "train",
    True,
    "Train the runs not kept yet; with --notrain, only summarize the kept "
    "ones (a grid still running, or one cut short).",
)
flags.DEFINE_string("one", "", "Internal: one run's JSON spec.")
flags.DEFINE_string("checkpoints", "", "Internal: one run's checkpoints.")
FLAGS = flags.FLAGS
# The flags a run's process needs (the others steer the whole benchmark).
TRAINING_FLAGS = (
    "train_fraction",
    "width",
    "epochs",
    "e2",
    "laps",
    "batch_size",
    "learning_rate",
)


def transport_spec(name):
    """The `Transport` arguments a variant's name stands for.

    `"none"`, `"tau"` and `"uzawa"` are the issue's variants (`TRANSPORTS`);
    `"tau<value>"` is a fixed, varying τ of that value:
    `transport_spec("tau10")` is `{"tau": 10.0, "varying": True}`.
    """
    if name in TRANSPORTS:
        return TRANSPORTS[name]
    try:
        tau = float(name.removeprefix("tau"))
    except ValueError:
        tau = math.nan
    if not (name.startswith("tau") and tau > 0):
        raise app.UsageError(
            f"Unknown transport {name!r}: use one of {', '.join(TRANSPORTS)} "
            "or tau<value> with a value > 0, e.g. tau10."
        )
    return {"tau": tau, "varying": True}


def train_one(spec):
    """Trains one variant with one seed here.

    Returns the test accuracy of every block's head (`"accuracies"`) and
    the training logs of each block's last epoch (`"last_epoch_logs"`:
    each block's loss, accuracy, transport term and Uzawa multiplier; in
    the multi-lap schedule a block's last epoch is that of the last lap).
    """
    import keras
    import numpy as np

    import localgrad
    from localgrad import train_setup

    keras.utils.set_random_seed(spec["seed"])
    x, y = localgrad.data.load_arrays("fashion_mnist", "train")
    x_test, y_test = localgrad.data.load_arrays("fashion_mnist", "test")
    rng = np.random.default_rng(spec["seed"])
    keep = rng.permutation(len(x))[: round(FLAGS.train_fraction * len(x))]
    x, y = x[keep], y[keep]
    num_classes = 10
    y, y_test = (
        keras.utils.to_categorical(labels, num_classes)
        for labels in (y, y_test)
    )
    net = localgrad.models.build(
        spec["model"], x.shape[1:], num_classes, width=FLAGS.width
    )
    kwargs = {}
    if spec["transport"] is not None:
        kwargs["transport"] = localgrad.Transport(**spec["transport"])
    model = localgrad.GreedyModel(
        net, num_blocks=spec["num_blocks"], heads="cnn1", **kwargs
    )
    num_blocks = model.num_blocks
    if spec["schedule"] == "parallel":
        schedule = localgrad.callbacks.GreedySchedule("parallel", verbose=0)
        epochs = FLAGS.epochs
    else:
        schedule = localgrad.callbacks.GreedySchedule(
            "multilap",
            laps=FLAGS.laps,
            epochs_per_block=FLAGS.epochs,
            extra_epochs_per_depth=FLAGS.e2,
            verbose=0,
        )
        epochs = schedule.total_epochs(num_blocks)
    steps_per_epoch = math.ceil(len(x) / FLAGS.batch_size)
    block_steps = train_setup.block_train_steps(
        schedule, num_blocks, epochs, steps_per_epoch
    )
    model.compile(
        optimizer=train_setup.build_optimizer(
            "sgd", FLAGS.learning_rate, momentum=0.9, weight_decay=2e-4
        ),
        loss=train_setup.build_loss(label_smoothing=0.1),
        metrics=["accuracy"],
    )
    train_setup.set_block_learning_rates(
        model,
        [
            train_setup.learning_rate_schedule(
                "cosine", FLAGS.learning_rate, steps
            )
            for steps in block_steps
        ],
    )
    checkpoint = localgrad.callbacks.EpochCheckpoint(FLAGS.checkpoints)
    initial_epoch = checkpoint.restore(model)
    if initial_epoch:
        logging.info("Resuming %s after epoch %d.", spec, initial_epoch)
    progress = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: logging.info(
            "%s: epoch %d/%d done.", spec, epoch + 1, epochs
        )
    )
    history = model.fit(
        x,
        y,
        batch_size=FLAGS.batch_size,
        epochs=epochs,
        initial_epoch=initial_epoch,
        callbacks=[schedule, checkpoint, progress],
        verbose=0,
    )
    logs = model.evaluate(x_test, y_test, batch_size=500, return_dict=True)
    return {
        "accuracies": [
            float(logs[f"block_{k}_accuracy"]) for k in range(num_blocks)
        ],
        "last_epoch_logs": {
            name: float(values[-1]) for name, values in history.history.items()
        },
    }


def training_flag_values():
    """The values of the flags a run's process trains with."""
    return {flag: getattr(FLAGS, flag) for flag in TRAINING_FLAGS}


def kept_path(name):
    """Where the result of the run `name` is kept."""
    return os.path.join(FLAGS.output_dir, "runs", f"{name}.json")


def kept_result(spec, name):
    """The kept result of a run with this spec and these training flags.

    A dict with `"accuracies"` (and `"last_epoch_logs"` for runs from
    e5fedad on); None when there is none (or it was trained with other
    flags).
    """
    path = kept_path(name)
    if not os.path.exists(path):
        return None
    with open(path) as file:
        kept = json.load(file)
    if kept["spec"] != spec or kept["flags"] != training_flag_values():
        return None
    return kept


def run_in_process(spec, name):
    """Runs `train_one(spec)` in a fresh process; returns its kept result.

    The process's progress lines (one per epoch) pass through to stderr.

    The result is kept in `<output_dir>/runs/<name>.json` with the spec and
    the training flags; a later call with the same ones reads it instead
    of training again, so an interrupted benchmark resumes. The run's
    checkpoints go to a directory named by the spec and flags, so that a
    run with other ones never resumes from them.
    """
    kept = kept_result(spec, name)
    if kept is not None:
        return kept
    flag_values = training_flag_values()
    path = kept_path(name)
    identity = json.dumps([spec, flag_values], sort_keys=True).encode()
    checkpoints = os.path.join(
        FLAGS.output_dir,
        "checkpoints",
        f"{name}-{hashlib.sha256(identity).hexdigest()[:12]}",
    )
    command = [
        sys.executable,
        os.path.abspath(__file__),
        f"--one={json.dumps(spec)}",
        f"--checkpoints={checkpoints}",
    ] + [f"--{flag}={value}" for flag, value in flag_values.items()]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [ROOT, env.get("PYTHONPATH")])
    )
    output = subprocess.run(
        command, check=True, stdout=subprocess.PIPE, text=True, env=env
    ).stdout
    result = json.loads(output.strip().splitlines()[-1])
    kept = dict(result, spec=spec, flags=flag_values)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as file:
        json.dump(kept, file)
    os.replace(path + ".tmp", path)
    shutil.rmtree(checkpoints, ignore_errors=True)
    return kept


def training_accuracies(kept, num_blocks):
    """Each block's training accuracy in its last epoch of a kept run.

    In the parallel schedule that is the run's last epoch; in the
    multi-lap one, the block's last epoch of the last lap (a block's logs
    are those of the epochs it trained). None for runs kept before
    e5fedad, which have no training logs.
    """
    logs = kept.get("last_epoch_logs")
    if logs is None:
        return None
    return [logs[f"block_{k}_accuracy"] for k in range(num_blocks)]


def per_block_mean(accuracies):
    """Each block's accuracy (%), the mean over seeds' accuracy lists."""
    return [100 * statistics.mean(a) for a in zip(*accuracies)]


def summarize(accuracies):
    """Mean per block over seeds; the best and the last block's means.

    The fall is each seed's best block minus its last block (points): 0
    when the accuracy never falls with depth. The spreads are the seeds'
    standard deviations (None for one seed).

    >>> result = summarize([[0.80, 0.86, 0.85], [0.82, 0.84, 0.84]])
    >>> round(result["fall_mean"], 2)
    0.5
    """
    per_block = per_block_mean(accuracies)
    lasts = [100 * a[-1] for a in accuracies]
    bests = [100 * max(a) for a in accuracies]
    falls = [best - last for best, last in zip(bests, lasts)]
    spread = statistics.stdev if len(accuracies) > 1 else lambda _: None
    return {
        "per_block_mean": per_block,
        "last_mean": statistics.mean(lasts),
        "last_std": spread(lasts),
        "best_mean": statistics.mean(bests),
        "best_std": spread(bests),
        "best_block": max(range(len(per_block)), key=per_block.__getitem__),
        "fall_mean": statistics.mean(falls),
        "fall_std": spread(falls),
    }


def mean_and_spread(mean, std):
    """`"84.35 ± 0.21"`, or `"84.35"` when one seed gives no spread."""
    return f"{mean:.2f}" if std is None else f"{mean:.2f} ± {std:.2f}"


def summary_cells(name, results):
    """The summary table's cells of variant `name`, from its name on.

    The last column is its last block's mean minus that of the same
    schedule without transport (the goal's ≥ 1 point), empty for the
    unregularized variants or when those were not run.
    """
    result = results[name]
    schedule = name.split(",")[0]
    baseline = results.get(f"{schedule}, none")
    against = ""
    if baseline is not None and baseline is not result:
        against = f"{result['last_mean'] - baseline['last_mean']:+.2f}"
    cells = [
        name,
        str(len(result["seeds"])),
        mean_and_spread(result["best_mean"], result["best_std"]),
        mean_and_spread(result["last_mean"], result["last_std"]),
        mean_and_spread(result["fall_mean"], result["fall_std"]),
        against,
    ]
    return " | ".join(cells) + " |"


def per_block_table(model_name, num_blocks, results, prefix=""):
    """A Markdown table of each variant's accuracy per block (%).

    The means over seeds, each row's best block in bold: the data of one
    of `PLOTS` (`prefix` as there), so variants whose runs did not log
    it are left out.
    """
    rows = {
        name: (result[f"{prefix}per_block_mean"], result[f"{prefix}seeds"])
        for name, result in results.items()
        if f"{prefix}per_block_mean" in result
    }
    lines = [
        f"{model_name}, K = {num_blocks}, mean over seeds: {PLOTS[prefix]}",
        "",
        "| schedule, transport | seeds | "
        + " | ".join(str(k) for k in range(1, num_blocks + 1))
        + " |",
        "|---|---:|" + "---:|" * num_blocks,
    ]
    for name, (per_block, seeds) in rows.items():
        best = max(range(num_blocks), key=per_block.__getitem__)
        cells = [
            f"**{value:.2f}**" if k == best else f"{value:.2f}"
            for k, value in enumerate(per_block)
        ]
        lines.append(f"| {name} | {len(seeds)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(results, num_blocks, title, path, prefix=""):
    """Accuracy of each block's head against depth, one line per variant.

    `prefix` picks one of `PLOTS`: `""` the test accuracy, `"training_"`
    the training accuracy of each block's last epoch, for the variants
    whose runs logged it.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.0, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for index, (name, result) in enumerate(results.items()):
        if f"{prefix}per_block_mean" not in result:
            continue
        per_block = result[f"{prefix}per_block_mean"]
        seeds = len(result[f"{prefix}seeds"])
        label = f"{name} ({seeds} seed{'s' if seeds > 1 else ''})"
        axes.plot(  # A variant keeps its colour in both plots.
            range(1, num_blocks + 1),
            per_block,
            marker="o",
            color=f"C{index}",
            label=label,
        )
    axes.set_xticks(range(1, num_blocks + 1))
    axes.set_xlabel("Block (one residual unit each)")
    axes.set_ylabel(PLOTS[prefix])
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, format="png")


def main(argv):
    del argv
    if FLAGS.one:
        print(json.dumps(train_one(json.loads(FLAGS.one))))
        return
    transports = {name: transport_spec(name) for name in FLAGS.transports}
    for name in FLAGS.schedules:
        if name not in SCHEDULES:
            raise app.UsageError(f"Unknown schedule {name!r}: {SCHEDULES}")
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    fetch = run_in_process if FLAGS.train else kept_result
    everything, table, per_block_tables = {}, [], []
    for run in FLAGS.runs:
        model_name, blocks = run.split(":")
        num_blocks = int(blocks)
        results = {}
        for schedule in FLAGS.schedules:
            for transport in FLAGS.transports:
                name = f"{schedule}, {transport}"
                by_seed, training_by_seed = {}, {}
                for seed in map(int, FLAGS.seeds):
                    spec = {
                        "model": model_name,
                        "num_blocks": num_blocks,
                        "schedule": schedule,
                        "transport": transports[transport],
                        "seed": seed,
                    }
                    run_name = (
                        f"{model_name}-k{num_blocks}-{schedule}-{transport}"
                        f"-seed{seed}"
                    )
                    kept = fetch(spec, run_name)
                    if kept is None:
                        continue
                    by_seed[seed] = kept["accuracies"]
                    training = training_accuracies(kept, num_blocks)
                    if training is not None:
                        training_by_seed[seed] = training
                if not by_seed:
                    continue
                results[name] = dict(
                    summarize(list(by_seed.values())),
                    seeds=list(by_seed),
                    accuracies=list(by_seed.values()),
                )
                if training_by_seed:
                    results[name].update(
                        training_per_block_mean=per_block_mean(
                            training_by_seed.values()
                        ),
                        training_seeds=list(training_by_seed),
                    )
        everything[run] = results
        if not results:
            continue
        for name in results:
            cells = summary_cells(name, results)
            line = f"| {model_name} | {num_blocks} | {cells}"
            table.append(line)
            print(line, flush=True)
        title = (
            f"{model_name} (K = {num_blocks}) on "
            f"{100 * FLAGS.train_fraction:g} % of Fashion-MNIST"
        )
        logged = [
            prefix
            for prefix in PLOTS
            if any(f"{prefix}seeds" in r for r in results.values())
        ]
        for prefix in logged:
            per_block_tables.append(
                per_block_table(model_name, num_blocks, results, prefix)
            )
            file_name = f"{prefix}accuracy_by_block_k{num_blocks}.png"
            path = os.path.join(FLAGS.output_dir, file_name)
            plot(results, num_blocks, title, path, prefix)
    header = [
        "| model | K | schedule, transport | seeds | best block (%) "
        "| last block (%) | fall after the best (points) "
        "| last block against no transport (points) |",
        "|---|---|---|---:|---|---|---|---:|",
    ]
    with open(os.path.join(FLAGS.output_dir, "transport.md"), "w") as file:
        file.write("\n\n".join(["\n".join(header + table)] + per_block_tables))
        file.write("\n")
    with open(os.path.join(FLAGS.output_dir, "transport.json"), "w") as file:
        json.dump(
            {
                "flags": {
                    name: getattr(FLAGS, name)
                    for name in TRAINING_FLAGS + ("runs", "seeds")
                },
                "results": everything,
            },
            file,
            indent=2,
        )


if __name__ == "__main__":
    app.run(main)
