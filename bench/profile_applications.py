"""The profiler on one model of every keras.applications family.

Each model is built with random weights at the smallest input its family
accepts, wrapped with `localgrad.Network.from_functional` (every cut point
a unit) and profiled (`localgrad.profile`, batch 1): the number of units,
the FLOPs and activation bytes of a training step over all units, and the
seconds the profile took. A family whose profile fails is recorded with
its error: `balance="memory"` and `balance="compute"` need the profile.

Run (about three minutes on 2 CPU cores):

    python bench/profile_applications.py \
        --output=bench/results/profile_applications.json
"""

import json
import time

from absl import app, flags

flags.DEFINE_list(
    "models",
    [
        "ConvNeXtTiny",
        "DenseNet121",
        "EfficientNetB0",
        "EfficientNetV2B0",
        "InceptionV3",
        "InceptionResNetV2",
        "MobileNet",
        "MobileNetV2",
        "MobileNetV3Small",
        "NASNetMobile",
        "ResNet50",
        "ResNet50V2",
        "VGG16",
        "Xception",
    ],
    "keras.applications constructors, one per family.",
)
flags.DEFINE_string("output", "", "Where to write the JSON results.")
FLAGS = flags.FLAGS

# The smallest input each family accepts (32 × 32 for the others).
SMALLEST_SIDE = {"InceptionV3": 75, "InceptionResNetV2": 75, "Xception": 71}


def measure(name):
    """Profiles one keras.applications model; returns a dict."""
    import keras

    import localgrad

    side = SMALLEST_SIDE.get(name, 32)
    model = getattr(keras.applications, name)(
        weights=None, input_shape=(side, side, 3), classes=10
    )
    network = localgrad.Network.from_functional(model)
    started = time.perf_counter()
    try:
        rows = localgrad.profile(network)
    except Exception as error:  # Recorded: what this benchmark looks for.
        return {"model": name, "input_side": side, "error": repr(error)}
    return {
        "model": name,
        "input_side": side,
        "units": network.num_units,
        "mflops": sum(row.flops for row in rows) / 1e6,
        "activation_mib": sum(row.activation_bytes for row in rows) / 2**20,
        "profile_seconds": time.perf_counter() - started,
    }


def main(argv):
    del argv
    results = []
    for name in FLAGS.models:
        results.append(measure(name))
        print(json.dumps(results[-1]), flush=True)
    if FLAGS.output:
        with open(FLAGS.output, "w") as file:
            json.dump(results, file, indent=1)


if __name__ == "__main__":
    app.run(main)
