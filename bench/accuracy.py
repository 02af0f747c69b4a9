"""Test accuracy of backprop, DGL, PredSim and SEDONA on the same budget.

Every run is the real binary, `bin/train.py`, on
the `fashion_mnist` config (one network, optimizer and epoch count for all),
so a figure here is what a user gets. Runs:

- `backprop`: K = 1, end to end.
- `dgl_k2`, `dgl_k4`: uniform split, `mlp_sr` heads, parallel schedule.
- `dgl_k4_pipelined`: `dgl_k4` under the pipelined schedule (block k
  trains on block k - 1's output of the step before): the accuracy cost
  of staleness.
- `predsim_k4`: uniform split, `predsim` heads.
- `sedona_k2`, `sedona_k4`: the split and heads of a SEDONA search
  (`--decoupling=.../decoupling.json`, from `localgrad-search`).

Prints mean ± std of the final classifier's test accuracy over seeds.
A run whose work directory already holds its `metrics.json` is not
trained again, so an interrupted benchmark continues where it stopped.

Run (Fashion-MNIST from `apt-get install -y dataset-fashion-mnist`):

    python bench/accuracy.py --runs=backprop,dgl_k4,predsim_k4 \
        --seeds=0,1,2 --output=bench/results/accuracy.json
    python bench/accuracy.py --runs=backprop,dgl_k2,dgl_k4,sedona_k2,sedona_k4 \
        --decoupling=/tmp/search/decoupling.json --seeds=0,1,2
    python bench/accuracy.py --runs=dgl_k4,dgl_k4_pipelined \
        --seeds=0,1,2 --output=bench/results/accuracy_pipelined.json
"""

import json
import os
import statistics
import subprocess
import sys

from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNS = {
    "backprop": ("backprop", {}),
    "dgl_k2": ("dgl", {"num_blocks": 2}),
    "dgl_k4": ("dgl", {"num_blocks": 4}),
    "dgl_k4_pipelined": ("dgl", {"num_blocks": 4, "schedule": "pipelined"}),
    "predsim_k4": ("predsim", {"num_blocks": 4}),
    "sedona_k2": ("dgl", {"num_blocks": 2, "decoupling": None}),
    "sedona_k4": ("dgl", {"num_blocks": 4, "decoupling": None}),
}

flags.DEFINE_list("runs", ["backprop", "dgl_k4", "predsim_k4"], "Runs.")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds of every run.")
flags.DEFINE_string("decoupling", "", "decoupling.json for sedona_* runs.")
flags.DEFINE_list(
    "overrides", [], "Config overrides for every run, e.g. epochs=5."
)
flags.DEFINE_string("workdir", "/tmp/localgrad_bench_accuracy", "Run dirs.")
flags.DEFINE_string("output", "", "Where to write the JSON results.")
FLAGS = flags.FLAGS


def train(run, seed):
    """Trains one run with one seed; returns its metrics.json."""
    variant, fields = RUNS[run]
    fields = dict(fields, seed=seed)
    if "decoupling" in fields:
        if not FLAGS.decoupling:
            raise app.UsageError(f"{run} needs --decoupling=decoupling.json")
        fields["decoupling"] = FLAGS.decoupling
    workdir = os.path.join(FLAGS.workdir, f"{run}_seed{seed}")
    metrics_path = os.path.join(workdir, "metrics.json")
    if not os.path.exists(metrics_path):
        _run_binary(variant, fields, workdir)
    with open(metrics_path) as file:
        return json.load(file)


def _run_binary(variant, fields, workdir):
    """Trains with `bin/train.py` into `workdir`."""
    command = [
        sys.executable,
        os.path.join(ROOT, "bin", "train.py"),
        f"--config=fashion_mnist:{variant}",
        f"--workdir={workdir}",
    ]
    command += [f"--config.{key}={value}" for key, value in fields.items()]
    command += [f"--config.{override}" for override in FLAGS.overrides]
    # The binary's epoch lines go to stderr: progress, apart from the table.
    subprocess.run(command, check=True, stdout=sys.stderr)


def main(argv):
    del argv
    for run in FLAGS.runs:
        if run not in RUNS:
            raise app.UsageError(f"Unknown run {run!r}; known: {list(RUNS)}")
    results = {}
    for run in FLAGS.runs:
        accuracies, seconds = [], []
        for seed in map(int, FLAGS.seeds):
            metrics = train(run, seed)
            seconds.append(metrics["wall_time_seconds"])
            accuracies.append(100 * metrics["test_accuracy"])
        results[run] = {
            "accuracies": accuracies,
            "mean": statistics.mean(accuracies),
            "std": statistics.stdev(accuracies) if len(accuracies) > 1 else 0,
            "seconds_per_run": statistics.mean(seconds),
        }
        print(
            f"{run:12s} {results[run]['mean']:.2f} ± "
            f"{results[run]['std']:.2f} %  ({len(accuracies)} seeds, "
            f"{results[run]['seconds_per_run']:.0f} s per run)",
            flush=True,
        )
    if FLAGS.output:
        os.makedirs(os.path.dirname(FLAGS.output) or ".", exist_ok=True)
        with open(FLAGS.output, "w") as file:
            json.dump(
                {"overrides": FLAGS.overrides, "results": results},
                file,
                indent=2,
            )


if __name__ == "__main__":
    app.run(main)
