"""Size on disk and inference latency of exported greedy models.

For each network (CIFAR input 32x32x3, 10 classes, full width) a 4-block
GreedyModel with `mlp_sr` heads is built and compared in three forms:

- `training`: the GreedyModel saved whole (`model.save("model.keras")`,
  compiled with SGD): network, heads and optimizer state.
- `exported`: `localgrad.export.save(model, dir)`, the `serve` endpoint
  alone, reloaded with `tf.saved_model.load` and called as `loaded.serve`.
- `plain_keras`: the same units and classifier in a plain
  `keras.Sequential`, called through a `tf.function` (`training=False`), as
  the exported endpoint is: like is compared with like.

Latency is the median wall time of a call after warm-up, for batch 1 and
batch 128. The forms are timed in turns (one call each, rotating the
order) so that load from other processes on the machine falls on all of
them alike. Sizes: the `.keras` file, the SavedModel directory and the
parameter bytes each holds (the exported ones are the network's alone).

Run (about 15 minutes on 2 CPU cores):

    python bench/export_latency.py --models=vgg19,resnet50 \
        --output=bench/results/export_latency.json
"""

import json
import os
import tempfile

from absl import app, flags
from turns import time_in_turns

flags.DEFINE_list("models", ["vgg19", "resnet50"], "Networks to measure.")
flags.DEFINE_list("batch_sizes", ["1", "128"], "Batch sizes to time.")
flags.DEFINE_integer("num_blocks", 4, "Blocks K of the training model.")
flags.DEFINE_float("width", 1.0, "Network width.")
flags.DEFINE_integer("warmup", 3, "Untimed calls per form and batch size.")
flags.DEFINE_integer("repeats_small", 60, "Timed calls at batch size 1.")
flags.DEFINE_integer("repeats_large", 25, "Timed calls at larger batches.")
flags.DEFINE_string("output", "", "Where to write the JSON results.")
FLAGS = flags.FLAGS

INPUT_SHAPE = (32, 32, 3)
NUM_CLASSES = 10


def measure(model_name, workdir):
    """Builds, saves, exports and times one network; returns a dict."""
    import keras
    import numpy as np
    import tensorflow as tf

    import localgrad
    from localgrad import export

    keras.utils.set_random_seed(0)
    network = localgrad.models.build(
        model_name, INPUT_SHAPE, NUM_CLASSES, width=FLAGS.width
    )
    model = localgrad.GreedyModel(network, num_blocks=FLAGS.num_blocks)
    model.compile(
        optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    keras_path = os.path.join(workdir, f"{model_name}.keras")
    model.save(keras_path)
    export_dir = os.path.join(workdir, f"{model_name}_export")
    summary = export.save(model, export_dir)

    loaded = tf.saved_model.load(export_dir)
    plain = keras.Sequential(
        [keras.Input(INPUT_SHAPE)] + network.units + [network.classifier]
    )
    plain_call = tf.function(
        lambda images: plain(images, training=False), autograph=False
    )
    forms = {"exported": loaded.serve, "plain_keras": plain_call}

    rng = np.random.default_rng(0)
    latency = {}
    for batch_size in [int(b) for b in FLAGS.batch_sizes]:
        images = tf.constant(
            rng.normal(size=(batch_size,) + INPUT_SHAPE).astype("float32")
        )
        reference = plain_call(images).numpy()
        exported = loaded.serve(images)["logits"].numpy()
        np.testing.assert_allclose(exported, reference, rtol=1e-4, atol=1e-4)
        repeats = (
            FLAGS.repeats_small if batch_size == 1 else FLAGS.repeats_large
        )
        latency[batch_size] = time_in_turns(
            forms, images, repeats, FLAGS.warmup
        )

    training = export.parameter_count(model.weights)
    return {
        "model": model_name,
        "num_blocks": FLAGS.num_blocks,
        "heads": "mlp_sr",
        "training_keras_bytes": os.path.getsize(keras_path),
        "training_parameters": training.parameters,
        "training_parameter_bytes": training.bytes,
        "exported_saved_model_bytes": summary.size_bytes,
        "exported_parameters": summary.exported.parameters,
        "exported_parameter_bytes": summary.exported.bytes,
        "network_parameters": export.parameter_count(
            network.weights
        ).parameters,
        "head_parameters": export.parameter_count(
            [w for head in model.heads for w in head.weights]
        ).parameters,
        "latency_ms": {
            str(batch_size): times for batch_size, times in latency.items()
        },
    }


def _table(results):
    lines = [
        f"{'model':10}{'form':14}{'size MB':>10}{'params M':>10}"
        + "".join(f"{'b=' + b + ' ms':>12}" for b in FLAGS.batch_sizes)
    ]
    for result in results:
        rows = [
            (
                "training",
                result["training_keras_bytes"],
                result["training_parameters"],
                None,
            ),
            (
                "exported",
                result["exported_saved_model_bytes"],
                result["exported_parameters"],
                "exported",
            ),
            ("plain_keras", None, result["network_parameters"], "plain_keras"),
        ]
        for form, size, params, timed in rows:
            size_text = "-" if size is None else f"{size / 1e6:.1f}"
            line = (
                f"{result['model']:10}{form:14}{size_text:>10}"
                f"{params / 1e6:>10.2f}"
            )
            for batch_size in FLAGS.batch_sizes:
                if timed is None:
                    line += f"{'-':>12}"
                else:
                    median = result["latency_ms"][batch_size][timed]["median"]
                    line += f"{median:>12.1f}"
            lines.append(line)
    return "\n".join(lines)


def main(argv):
    del argv
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    results = []
    with tempfile.TemporaryDirectory() as workdir:
        for model_name in FLAGS.models:
            results.append(measure(model_name, workdir))
            print(json.dumps(results[-1]), flush=True)
    print(_table(results))
    if FLAGS.output:
        os.makedirs(os.path.dirname(FLAGS.output) or ".", exist_ok=True)
        with open(FLAGS.output, "w") as file:
            json.dump(results, file, indent=2)


if __name__ == "__main__":
    app.run(main)
