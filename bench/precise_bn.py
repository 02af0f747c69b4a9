"""Test accuracy with and without precise BatchNorm, on the same weights.

For every seed and epoch count, trains the config (default: the
Fashion-MNIST DGL K = 4 model of the `fashion_mnist:dgl` config) with
`train_lib` for that many epochs (cosine schedule over those epochs), then
evaluates the saved model on the test set twice: as trained (BatchNorm's
moving averages) and after `localgrad.callbacks.PreciseBatchNorm`
re-estimated every BatchNorm on `--num_batches` training batches with the
weights frozen. Prints mean ± std over seeds of the classifier's and every
head's test accuracy.

Run (Fashion-MNIST from `apt-get install -y dataset-fashion-mnist`; about
5 epochs of training per seed):

    python bench/precise_bn.py --epochs=1,4 --seeds=0,1,2 \
        --output=bench/results/precise_bn.json

Smoke run (seconds; digits, not a measurement):

    python bench/precise_bn.py --config=tiny \
        --config.steps_per_epoch=2 --epochs=1 --seeds=0 --num_batches=2
"""

import json
import os
import statistics

from absl import app, flags

from localgrad.commands.config_flag import define_config_flag

define_config_flag("The training config.", default="fashion_mnist:dgl")
flags.DEFINE_list("epochs", ["1", "4"], "Epoch counts to train for.")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds of every run.")
flags.DEFINE_integer("num_batches", 60, "Training batches per estimate.")
flags.DEFINE_string("workdir", "/tmp/localgrad_bench_precise_bn", "Runs.")
flags.DEFINE_string("output", "", "Where to write the JSON results.")
FLAGS = flags.FLAGS


def _accuracies(results, num_blocks):
    return {
        "classifier": float(results["accuracy"]),
        "heads": [
            float(results[f"block_{block}_accuracy"])
            for block in range(num_blocks - 1)
        ],
    }


def measure(config, epochs, seed):
    """Trains one run; returns test accuracies without and with."""
    import keras

    from localgrad import data, train_lib
    from localgrad.callbacks import PreciseBatchNorm

    config = config.copy_and_resolve_references()
    config.epochs, config.seed = epochs, seed
    config.precise_bn_batches = 0
    workdir = os.path.join(FLAGS.workdir, f"epochs{epochs}_seed{seed}")
    metrics = train_lib.train_and_evaluate(config, workdir)
    model = keras.saving.load_model(os.path.join(workdir, "model.keras"))
    common = dict(
        data_dir=config.data_dir,
        validation_fraction=config.validation_fraction,
        seed=seed,
    )
    train = data.load(
        config.dataset,
        "train",
        config.batch_size,
        augment=config.augment,
        **common,
    )
    test = data.load(config.dataset, "test", config.eval_batch_size, **common)
    without = model.evaluate(test, return_dict=True, verbose=0)
    assert abs(without["accuracy"] - metrics["test_accuracy"]) < 1e-6
    PreciseBatchNorm(FLAGS.num_batches, train.repeat()).recompute(model)
    precise = model.evaluate(test, return_dict=True, verbose=0)
    return {
        "without": _accuracies(without, model.num_blocks),
        "with": _accuracies(precise, model.num_blocks),
    }


def _mean_std(values):
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):.2f} ± {100 * std:.2f}"


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    results = {
        "config": FLAGS.config.to_dict(),
        "num_batches": FLAGS.num_batches,
        "runs": {},
    }
    for epochs in map(int, FLAGS.epochs):
        runs = [measure(FLAGS.config, epochs, int(s)) for s in FLAGS.seeds]
        results["runs"][epochs] = runs
        for kind in ("without", "with"):
            classifier = _mean_std([r[kind]["classifier"] for r in runs])
            heads = [
                _mean_std([r[kind]["heads"][k] for r in runs])
                for k in range(len(runs[0][kind]["heads"]))
            ]
            print(
                f"{epochs} epoch(s), {kind} precise BN: classifier "
                f"{classifier} %, heads {', '.join(heads)} %"
            )
    if FLAGS.output:
        with open(FLAGS.output, "w") as file:
            json.dump(results, file, indent=2)


if __name__ == "__main__":
    app.run(main)
