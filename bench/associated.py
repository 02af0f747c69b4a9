"""Associated Learning against backprop and DGL, and its effective export.

Accuracy: every run is the real binary, `bin/train.py`, on
the `fashion_mnist_associated` config: for each network (the MLP at width
0.25, VGG-11 at width 0.5) the same network, optimizer (Adam 1e-3, cosine)
and 10 epochs, trained by

- `backprop`: K = 1, end to end (`<network>_backprop`);
- `dgl_k4`: DGL, K = 4, `mlp_sr` heads on VGG-11, `mlp` heads (Dense,
  ReLU, Dense) on the MLP (`<network>_dgl`);
- `associated_k4`: Associated Learning, K = 4, n = 300 (`<network>`).

Prints and writes mean ± std of the test accuracy over seeds (AL's is
h_1(…h_4(b_4(s_4))), the others' the network's classifier) and plots it
by method. A run whose workdir holds a `metrics.json` is not trained
again; an interrupted one resumes from its checkpoint.

Inference: for each network, the first seed's AL model is exported with
`localgrad.export.save` (the effective parameters: all f_i, b_4, all h_i)
and compared with the training model (`model.keras`: the network with
its unused classifier, every encoder g_i, bridge b_i and decoder h_i) and
with the backprop model's export (the same units and the network's own
classifier): parameters, bytes on disk, and the median latency of a call
at batch 1 and 128, the forms timed in turns (one call each, rotating the
order) so that load from other processes falls on all of them alike.

Run (each network's runs take hours on 2 CPU cores, VGG-11's most; then
a minute of timing, which wants an otherwise idle machine). BENCHMARKS.md
ran the MLP at the config's 10 epochs and VGG-11 at 4:

    python bench/associated.py --networks=mlp --seeds=0,1,2 \
        --output=bench/results/associated_mlp.json \
        --plot=bench/results/associated_mlp_accuracy.png
    python bench/associated.py --networks=vgg11 --seeds=0,1,2 \
        --overrides=epochs=4 \
        --output=bench/results/associated_vgg11.json \
        --plot=bench/results/associated_vgg11_accuracy.png

A quick look at the wiring (digits, 2 steps, no meaningful figures):

    python bench/associated.py --seeds=0,1 --repeats_small=3 \
        --repeats_large=2 --workdir=/tmp/al_bench_smoke \
        --overrides=dataset=digits,epochs=1,steps_per_epoch=2
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile

from absl import app, flags, logging
from turns import time_in_turns

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = "fashion_mnist_associated"
# Run name -> the config variant's suffix after the network's name.
METHODS = {"backprop": "_backprop", "dgl_k4": "_dgl", "associated_k4": ""}

flags.DEFINE_list("networks", ["mlp", "vgg11"], "Networks to train.")
flags.DEFINE_list("methods", list(METHODS), "Methods to compare.")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds of every run.")
flags.DEFINE_list(
    "overrides", [], "Config overrides for every run, e.g. epochs=5."
)
flags.DEFINE_string("workdir", "/tmp/localgrad_bench_associated", "Runs.")
flags.DEFINE_bool("inference", True, "Also measure the export's cost.")
flags.DEFINE_list("batch_sizes", ["1", "128"], "Batch sizes to time.")
flags.DEFINE_integer("warmup", 3, "Untimed calls per form and batch size.")
flags.DEFINE_integer("repeats_small", 60, "Timed calls at batch size 1.")
flags.DEFINE_integer("repeats_large", 25, "Timed calls at larger batches.")
flags.DEFINE_string("output", "", "Where to write the JSON results.")
flags.DEFINE_string("plot", "", "Where to write the accuracy plot (PNG).")
FLAGS = flags.FLAGS


def run_dir(network, method, seed):
    return os.path.join(FLAGS.workdir, f"{network}_{method}_seed{seed}")


def train(network, method, seed):
    """Trains one run (unless finished); returns its metrics.json."""
    workdir = run_dir(network, method, seed)
    metrics_path = os.path.join(workdir, "metrics.json")
    if not os.path.exists(metrics_path):
        command = [
            sys.executable,
            os.path.join(ROOT, "bin", "train.py"),
            f"--config={CONFIG}:{network}{METHODS[method]}",
            f"--workdir={workdir}",
            f"--config.seed={seed}",
        ]
        command += [f"--config.{override}" for override in FLAGS.overrides]
        # The binary's epoch lines go to stderr: progress, apart from results.
        subprocess.run(command, check=True, stdout=sys.stderr)
    with open(metrics_path) as file:
        return json.load(file)


def accuracy(network, method, seeds):
    """Mean ± std of the test accuracy (in %) of one method over seeds."""
    accuracies, seconds = [], []
    for seed in seeds:
        metrics = train(network, method, seed)
        accuracies.append(100 * metrics["test_accuracy"])
        seconds.append(metrics["train_seconds"])
    return {
        "accuracies": accuracies,
        "mean": statistics.mean(accuracies),
        "std": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
        "train_seconds_per_run": statistics.mean(seconds),
    }


def inference(network, seed, workdir):
    """Sizes and latency of AL's export against its training model."""
    import numpy as np
    import tensorflow as tf

    from localgrad import export

    al_dir = run_dir(network, "associated_k4", seed)
    backprop_dir = run_dir(network, "backprop", seed)
    model = export.load_trained_model(al_dir)
    al_export = export.save(model, os.path.join(workdir, f"{network}_al"))
    backprop_export = export.save(
        export.load_trained_model(backprop_dir),
        os.path.join(workdir, f"{network}_backprop"),
    )
    training = export.parameter_count(model.weights)
    # Kept referenced: a loaded endpoint's variables die with its object.
    loaded = {
        "al_export": tf.saved_model.load(al_export.path),
        "backprop_export": tf.saved_model.load(backprop_export.path),
    }
    forms = {
        "al_export": loaded["al_export"].serve,
        "al_training_model": tf.function(
            lambda images: model(images, training=False), autograph=False
        ),
        "backprop_export": loaded["backprop_export"].serve,
    }
    rng = np.random.default_rng(0)
    shape = tuple(model.network.example_shape)
    latency = {}
    for batch_size in map(int, FLAGS.batch_sizes):
        images = tf.constant(
            rng.normal(size=(batch_size,) + shape).astype("float32")
        )
        served = forms["al_export"](images)["logits"].numpy()
        np.testing.assert_allclose(
            served, model(images, training=False), rtol=1e-4, atol=1e-5
        )
        repeats = (
            FLAGS.repeats_small if batch_size == 1 else FLAGS.repeats_large
        )
        latency[str(batch_size)] = time_in_turns(
            forms, images, repeats, FLAGS.warmup
        )
    return {
        "training_parameters": training.parameters,
        "training_parameter_bytes": training.bytes,
        "training_keras_bytes": export.directory_size(
            os.path.join(al_dir, "model.keras")
        ),
        "export_parameters": al_export.exported.parameters,
        "export_parameter_bytes": al_export.exported.bytes,
        "export_saved_model_bytes": al_export.size_bytes,
        "backprop_export_parameters": backprop_export.exported.parameters,
        "backprop_export_saved_model_bytes": backprop_export.size_bytes,
        "latency_ms": latency,
    }


def _accuracy_table(results):
    lines = [f"{'network':10}{'method':16}{'test accuracy %':>20}"]
    for network, methods in results.items():
        for method, result in methods.items():
            lines.append(
                f"{network:10}{method:16}"
                f"{result['mean']:>12.2f} ± {result['std']:.2f}"
            )
    return "\n".join(lines)


def _inference_table(costs):
    batches = FLAGS.batch_sizes
    lines = [
        f"{'network':10}{'form':20}{'params M':>10}{'MB':>8}"
        + "".join(f"{'b=' + b + ' ms':>12}" for b in batches)
    ]
    for network, cost in costs.items():
        rows = [
            (
                "al_training_model",
                cost["training_parameters"],
                cost["training_keras_bytes"],
            ),
            (
                "al_export",
                cost["export_parameters"],
                cost["export_saved_model_bytes"],
            ),
            (
                "backprop_export",
                cost["backprop_export_parameters"],
                cost["backprop_export_saved_model_bytes"],
            ),
        ]
        for form, parameters, size in rows:
            line = (
                f"{network:10}{form:20}{parameters / 1e6:>10.3f}"
                f"{size / 1e6:>8.1f}"
            )
            for batch in batches:
                median = cost["latency_ms"][batch][form]["median"]
                line += f"{median:>12.2f}"
            lines.append(line)
    return "\n".join(lines)


def plot(results, path):
    """Grouped bars of the mean test accuracy, std as error bars."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 4))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    networks = list(results)
    width = 0.8 / len(FLAGS.methods)
    for index, method in enumerate(FLAGS.methods):
        offset = (index - (len(FLAGS.methods) - 1) / 2) * width
        positions = [n + offset for n in range(len(networks))]
        means = [results[net][method]["mean"] for net in networks]
        stds = [results[net][method]["std"] for net in networks]
        bars = axes.bar(
            positions, means, width, yerr=stds, capsize=3, label=method
        )
        axes.bar_label(bars, fmt="%.1f", fontsize=7, padding=2)
    axes.set_xticks(range(len(networks)), networks)
    axes.set_ylabel("test accuracy (%)")
    low = min(r["mean"] for m in results.values() for r in m.values())
    axes.set_ylim(max(0.0, low - 10), 100)
    dataset = next(
        (
            o.split("=", 1)[1]
            for o in FLAGS.overrides
            if o.startswith("dataset=")
        ),
        "fashion_mnist",
    )
    count = len(FLAGS.seeds)
    title = (
        f"{count} seeds, mean ± std" if count > 1 else f"seed {FLAGS.seeds[0]}"
    )
    axes.set_title(f"{dataset}, {title}")
    axes.legend(
        loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=3, fontsize=8
    )
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main(argv):
    del argv
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.set_verbosity(logging.WARNING)
    for method in FLAGS.methods:
        if method not in METHODS:
            raise app.UsageError(
                f"Unknown method {method!r}; known: {list(METHODS)}"
            )
    seeds = list(map(int, FLAGS.seeds))
    results = {}
    for network in FLAGS.networks:
        results[network] = {}
        for method in FLAGS.methods:
            results[network][method] = accuracy(network, method, seeds)
            print(
                f"{network:8s}{method:15s}"
                f"{results[network][method]['mean']:.2f} ± "
                f"{results[network][method]['std']:.2f} %",
                flush=True,
            )
    print(_accuracy_table(results))
    costs = {}
    if FLAGS.inference and {"associated_k4", "backprop"} <= set(FLAGS.methods):
        with tempfile.TemporaryDirectory() as workdir:
            for network in FLAGS.networks:
                costs[network] = inference(network, seeds[0], workdir)
        print(_inference_table(costs))
    if FLAGS.plot:
        os.makedirs(os.path.dirname(FLAGS.plot) or ".", exist_ok=True)
        plot(results, FLAGS.plot)
    if FLAGS.output:
        os.makedirs(os.path.dirname(FLAGS.output) or ".", exist_ok=True)
        with open(FLAGS.output, "w") as file:
            json.dump(
                {
                    "overrides": FLAGS.overrides,
                    "seeds": seeds,
                    "accuracy": results,
                    "inference": costs,
                },
                file,
                indent=2,
            )


if __name__ == "__main__":
    app.run(main)
