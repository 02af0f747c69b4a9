"""Networks with Keras' default BatchNorm, greedy: precise statistics or not.

Two networks whose BatchNormalization keeps Keras' defaults, as users
bring them:

- `residual`: a residual network written as a Keras user writes one (its
  own residual layer class, `BatchNormalization()` with momentum 0.99): a
  stem, two residual layers at 32 channels, a strided convolution, two at
  64, global pooling and a dense classifier; six units.
- `mobilenetv2`: `keras.applications.MobileNetV2` (width 0.35, random
  initialization, its BatchNorm momentum 0.999) wrapped with
  `localgrad.Network.from_functional`, on images padded to 32×32.

Each is trained greedily (K = `--num_blocks`, equal unit counts, `mlp_sr`
heads) and with backprop (K = 1) on the first `--train_examples`
Fashion-MNIST training images, validated on the test set after every
epoch, twice: with `precise_batch_norm=0` (Keras' moving averages, what
localgrad did before) and with the default (`precise_batch_norm=50`). The
same seed gives both settings the same weights: the statistics do not
enter a training step. Recorded per run: the test accuracy of the
classifier and of every head, the accuracy on the training images in
inference mode (`train_accuracy`) and in the last epoch's training steps
(`fit_accuracy`), and the seconds of `fit`; `seconds_vs_off` divides the
default's seconds by the same run's without it.

Runs are cached in `--output` as they finish, so an interrupted grid
resumes where it stopped.

`--cost` measures what one estimate costs instead, without training to
accuracy: per network and method, the seconds of `--precise_batches`
training steps and of one estimate on as many batches (each after a
warm-up call that traces it), and their ratio.

Run (Fashion-MNIST from `apt-get install -y dataset-fashion-mnist`; about
25 minutes on 2 cores):

    python bench/batch_norm_default.py --seeds=0 \
        --output=bench/results/batch_norm_default.json

Smoke run (a minute): `--train_examples=512 --test_examples=256
--epochs=1 --output=/tmp/batch_norm_default.json`.
"""

import json
import os
import time

from absl import app, flags

flags.DEFINE_list("networks", ["residual", "mobilenetv2"], "Networks.")
flags.DEFINE_list("runs", ["greedy", "backprop"], "Training methods.")
flags.DEFINE_list("seeds", ["0"], "Seeds.")
flags.DEFINE_integer("epochs", 3, "Training epochs.")
flags.DEFINE_integer("batch_size", 128, "Training batch size.")
flags.DEFINE_integer("num_blocks", 3, "K of the greedy runs.")
flags.DEFINE_integer("train_examples", 12000, "Training images.")
flags.DEFINE_integer("test_examples", 0, "Test images (0: all 10,000).")
flags.DEFINE_integer("precise_batches", 50, "The default's batch count.")
flags.DEFINE_string("output", "", "The JSON results (read to resume).")
flags.DEFINE_bool("cost", False, "Measure one estimate's cost instead.")
FLAGS = flags.FLAGS


def residual_network():
    """The user's residual network, BatchNorm as Keras defines it."""
    import keras

    import localgrad

    @keras.saving.register_keras_serializable(package="bench")
    class Residual(keras.layers.Layer):
        """relu(x + BN(conv(relu(BN(conv(x))))))."""

        def __init__(self, filters, **kwargs):
            super().__init__(**kwargs)
            self.filters = filters
            self.conv1 = keras.layers.Conv2D(filters, 3, padding="same")
            self.bn1 = keras.layers.BatchNormalization()
            self.conv2 = keras.layers.Conv2D(filters, 3, padding="same")
            self.bn2 = keras.layers.BatchNormalization()

        def call(self, x, training=None):
            h = keras.ops.relu(self.bn1(self.conv1(x), training=training))
            h = self.bn2(self.conv2(h), training=training)
            return keras.ops.relu(x + h)

        def get_config(self):
            return {**super().get_config(), "filters": self.filters}

    def convolution(filters, strides):
        return keras.Sequential(
            [
                keras.layers.Conv2D(filters, 3, strides, padding="same"),
                keras.layers.BatchNormalization(),
                keras.layers.ReLU(),
            ]
        )

    units = [
        convolution(32, 1),
        Residual(32),
        Residual(32),
        convolution(64, 2),
        Residual(64),
        Residual(64),
    ]
    classifier = keras.Sequential(
        [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10)]
    )
    return localgrad.Network(units, classifier, input_shape=(28, 28, 1))


def mobilenet_network():
    """keras.applications' MobileNetV2 as it comes (momentum 0.999)."""
    import keras

    import localgrad

    base = keras.applications.MobileNetV2(
        weights=None,
        input_shape=(32, 32, 1),
        alpha=0.35,
        classes=10,
        classifier_activation=None,
    )
    return localgrad.Network.from_functional(base)


def images(network, split, limit):
    import numpy as np

    import localgrad

    x, y = localgrad.data.load_arrays("fashion_mnist", split)
    if limit:
        x, y = x[:limit], y[:limit]
    if network == "mobilenetv2":
        x = np.pad(
            x, ((0, 0), (2, 2), (2, 2), (0, 0)), constant_values=float(x.min())
        )
    return x.astype("float32"), y


def compiled_model(network_name, run, seed, precise, steps):
    import keras

    import localgrad

    keras.utils.set_random_seed(seed)
    build = (
        residual_network if network_name == "residual" else mobilenet_network
    )
    network = build()
    model = localgrad.GreedyModel(
        network,
        num_blocks=1 if run == "backprop" else FLAGS.num_blocks,
        precise_batch_norm=precise,
    )
    model.compile(
        optimizer=keras.optimizers.SGD(
            keras.optimizers.schedules.CosineDecay(0.05, FLAGS.epochs * steps),
            momentum=0.9,
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def one_run(network_name, run, seed, precise):
    """Trains one run; returns its accuracies and time."""
    x, y = images(network_name, "train", FLAGS.train_examples)
    x_test, y_test = images(network_name, "test", FLAGS.test_examples)
    steps = -(-len(x) // FLAGS.batch_size)
    model = compiled_model(network_name, run, seed, precise, steps)
    start = time.perf_counter()
    history = model.fit(
        x,
        y,
        batch_size=FLAGS.batch_size,
        epochs=FLAGS.epochs,
        validation_data=(x_test, y_test),
        verbose=0,
    )
    seconds = time.perf_counter() - start
    test = model.evaluate(
        x_test, y_test, batch_size=500, verbose=0, return_dict=True
    )
    train = model.evaluate(x, y, batch_size=500, verbose=0, return_dict=True)
    heads = [
        float(test[f"block_{k}_accuracy"]) for k in range(model.num_blocks)
    ]
    return {
        "network": network_name,
        "run": run,
        "seed": seed,
        "precise_batch_norm": precise,
        "test_accuracy": float(test["accuracy"]),
        "head_test_accuracies": heads,
        "train_accuracy": float(train["accuracy"]),
        "fit_accuracy": float(history.history["accuracy"][-1]),
        "fit_seconds": seconds,
    }


def estimate_cost(network_name, run):
    """Seconds of n training steps and of one estimate on n batches."""
    import tensorflow as tf

    from localgrad.callbacks import PreciseBatchNorm

    count = FLAGS.precise_batches
    x, y = images(network_name, "train", count * FLAGS.batch_size)
    model = compiled_model(network_name, run, 0, 0, count)
    batches = tf.data.Dataset.from_tensor_slices((x, y)).batch(FLAGS.batch_size)
    model.fit(batches.take(1), verbose=0)  # Traces the step.
    start = time.perf_counter()
    model.fit(batches, verbose=0)
    steps_seconds = time.perf_counter() - start
    estimate = PreciseBatchNorm(count, batches)
    estimate.recompute(model)  # Traces the forward pass.
    start = time.perf_counter()
    estimate.recompute(model)
    estimate_seconds = time.perf_counter() - start
    return {
        "network": network_name,
        "run": run,
        "batches": count,
        "training_steps_seconds": steps_seconds,
        "estimate_seconds": estimate_seconds,
        "estimate_vs_steps": estimate_seconds / steps_seconds,
    }


def key(result):
    return (
        result["network"],
        result["run"],
        result["seed"],
        result["precise_batch_norm"],
    )


def main(argv):
    del argv
    if FLAGS.cost:
        costs = [
            estimate_cost(network, run)
            for network in FLAGS.networks
            for run in FLAGS.runs
        ]
        print(json.dumps(costs, indent=1))
        if FLAGS.output:
            with open(FLAGS.output, "w") as f:
                json.dump(costs, f, indent=1)
        return
    results = []
    if FLAGS.output and os.path.exists(FLAGS.output):
        with open(FLAGS.output) as f:
            results = json.load(f)["runs"]
    done = {key(result) for result in results}
    grid = [
        (network, run, int(seed), precise)
        for network in FLAGS.networks
        for run in FLAGS.runs
        for seed in FLAGS.seeds
        for precise in (0, FLAGS.precise_batches)
    ]
    for index, point in enumerate(grid):
        if point in done:
            continue
        print(f"[{index + 1}/{len(grid)}] {point}", flush=True)
        result = one_run(*point)
        print(json.dumps(result), flush=True)
        results.append(result)
        if FLAGS.output:
            write(results)
    by_key = {key(result): result for result in results}
    for result in results:
        off = by_key.get(key(result)[:3] + (0,))
        if off and result["precise_batch_norm"]:
            result["seconds_vs_off"] = (
                result["fit_seconds"] / off["fit_seconds"]
            )
    if FLAGS.output:
        write(results)


def write(results):
    flag_values = {
        name: FLAGS[name].value
        for name in (
            "epochs",
            "batch_size",
            "num_blocks",
            "train_examples",
            "test_examples",
            "precise_batches",
        )
    }
    temporary = FLAGS.output + ".tmp"
    with open(temporary, "w") as f:
        json.dump({"flags": flag_values, "runs": results}, f, indent=1)
    os.replace(temporary, FLAGS.output)


if __name__ == "__main__":
    app.run(main)
