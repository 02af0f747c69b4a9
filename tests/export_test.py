"""Tests of localgrad.export: round trips, parameter counts, TFLite, errors."""

import json
import os
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import localgrad
from localgrad import export

SHAPE = (16, 16, 3)
CLASSES = 10
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Loads every SavedModel with TensorFlow alone and runs every endpoint, as
# an attribute and as a signature, on batches of two sizes.
RELOAD_SCRIPT = r"""
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np
import tensorflow as tf
args = json.loads(sys.argv[1])
images = np.load(args["images"])
results = {}
for case, path in args["exports"].items():
    loaded = tf.saved_model.load(path)
    for name in loaded.signatures:
        endpoint = "serve" if name == "serving_default" else name
        for size in (len(images), 1):
            batch = images[:size]
            by_attr = getattr(loaded, endpoint)(tf.constant(batch))
            by_sig = loaded.signatures[name](images=tf.constant(batch))
            for key, value in by_attr.items():
                results[f"{case}/{endpoint}/{size}/{key}"] = value.numpy()
                results[f"{case}/{endpoint}/{size}/sig_{key}"] = (
                    by_sig[key].numpy())
results["localgrad_imported"] = np.array(
    any(m.split(".")[0] == "localgrad" for m in sys.modules))
np.savez(args["output"], **results)
"""


def _randomize_batch_norm(model, seed):
    """Non-trivial moving statistics, so inference mode is really tested."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        if "moving_mean" in variable.path:
            variable.assign(rng.normal(0, 0.5, variable.shape))
        elif "moving_variance" in variable.path:
            variable.assign(rng.uniform(0.5, 2.0, variable.shape))


def _model(arch, num_blocks, heads="mlp_sr", seed=0):
    keras.utils.set_random_seed(seed)
    network = localgrad.models.build(arch, SHAPE, CLASSES, width=0.125)
    model = localgrad.GreedyModel(network, num_blocks=num_blocks, heads=heads)
    _randomize_batch_norm(model, seed)
    return model


def _params(layers):
    weights = [w for layer in layers for w in layer.weights]
    return export.parameter_count(weights)


def _log_softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _softmax(scores):
    return np.exp(_log_softmax(scores))


CASES = [("vgg11", 1), ("vgg11", 4), ("resnet18", 1), ("resnet18", 4)]
# This case is exported by the real binary from a workdir, the others by
# `export.save` in this process while the binary runs.
BINARY_CASE = "resnet18_k4"


def _run_export_binary(workdir, output, *flags):
    return subprocess.Popen(
        [
            sys.executable,
            os.path.join(REPO, "bin", "export.py"),
            f"--workdir={workdir}",
            f"--output={output}",
            *flags,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory):
    """Exports every case and reloads them all in one fresh process."""
    root = tmp_path_factory.mktemp("export")
    images = np.random.default_rng(1).normal(size=(5,) + SHAPE)
    images = images.astype("float32")
    np.save(root / "images.npy", images)
    models, exports = {}, {}
    for arch, num_blocks in CASES:
        case = f"{arch}_k{num_blocks}"
        models[case] = _model(arch, num_blocks)
        exports[case] = str(root / case)
    workdir = root / "workdir"
    workdir.mkdir()
    models[BINARY_CASE].save(str(workdir / "model.keras"))
    binary = _run_export_binary(
        workdir, exports[BINARY_CASE], "--ensemble=3", "--early_exits=all"
    )
    for case, model in models.items():
        if case != BINARY_CASE:
            export.save(
                model,
                exports[case],
                ensemble=min(model.num_blocks, 3),
                early_exits=True,
            )
    stdout, stderr = binary.communicate()
    assert binary.returncode == 0, stderr
    output = root / "outputs.npz"
    args = {
        "images": str(root / "images.npy"),
        "exports": exports,
        "output": str(output),
    }
    subprocess.run(
        [sys.executable, "-c", RELOAD_SCRIPT, json.dumps(args)],
        check=True,
        cwd=str(root),
    )
    return images, models, exports, stdout, dict(np.load(output))


@pytest.mark.parametrize("arch,num_blocks", CASES)
def test_every_endpoint_matches_the_model_in_a_fresh_process(
    round_trip, arch, num_blocks
):
    images, models, _, _, outputs = round_trip
    assert not outputs["localgrad_imported"]
    case = f"{arch}_k{num_blocks}"
    model = models[case]
    heads = [t.numpy() for t in model.head_outputs(images, training=False)]
    ensemble = min(num_blocks, 3)
    expected = {
        "serve": model.predict_on_batch(images),
        "serve_ensemble": np.mean(
            [_log_softmax(h) for h in heads[-ensemble:]], axis=0
        ),
    }
    for block in range(num_blocks - 1):
        expected[f"serve_exit_{block}"] = heads[block]
    endpoints = {
        key.split("/")[1] for key in outputs if key.startswith(case + "/")
    }
    assert endpoints == set(expected)
    for endpoint, scores in expected.items():
        for size in (5, 1):
            for prefix in ("", "sig_"):
                got = {
                    key: outputs[f"{case}/{endpoint}/{size}/{prefix}{key}"]
                    for key in ("logits", "probabilities", "predicted_class")
                }
                np.testing.assert_allclose(
                    got["logits"], scores[:size], atol=1e-5
                )
                np.testing.assert_allclose(
                    got["probabilities"], _softmax(scores[:size]), atol=1e-5
                )
                np.testing.assert_array_equal(
                    got["predicted_class"], scores[:size].argmax(-1)
                )


@pytest.mark.parametrize("arch,num_blocks", CASES)
def test_export_with_every_head_holds_exactly_network_and_heads(
    round_trip, arch, num_blocks
):
    _, models, exports, _, _ = round_trip
    case = f"{arch}_k{num_blocks}"
    model = models[case]
    network = model.network
    expected = _params(network.units + [network.classifier] + model.heads)
    assert export.saved_parameter_count(exports[case]) == expected


def test_serve_alone_holds_the_effective_parameters_only(tmp_path):
    model = _model("vgg11", 4)
    model.compile(
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    summary = export.save(model, str(tmp_path / "serve"))
    network = model.network
    effective = _params(network.units + [network.classifier])
    heads = _params(model.heads)
    training = export.parameter_count(model.weights)
    assert summary.endpoints == ("serve",)
    assert summary.exported == effective
    assert training - summary.exported == heads
    assert heads.parameters > 0
    # No optimizer slots, metric state or seed in the file either.
    assert export.saved_parameter_count(str(tmp_path / "serve")) == effective


def test_each_endpoint_adds_only_the_heads_it_uses():
    model = _model("vgg11", 4, heads=["predsim", "linear", "mlp_sr"])
    network = model.network
    effective = network.units + [network.classifier]

    def exported(**kwargs):
        module = export.InferenceModule(model, **kwargs)
        return export.parameter_count(module.exported_variables())

    assert exported() == _params(effective)
    assert exported(early_exits=[1]) == _params(effective + [model.heads[1]])
    assert exported(ensemble=3) == _params(effective + model.heads[1:])
    # predsim's similarity branch is training-only: no endpoint reads it.
    similarity = _params([model.heads[0].similarity_conv])
    assert similarity.parameters > 0
    assert exported(early_exits=[0]) == (
        _params(effective + [model.heads[0]]) - similarity
    )
    assert exported(ensemble=4, early_exits=True) == (
        export.parameter_count(model.weights) - similarity
    )


def test_tflite_signatures_match_the_saved_model(tmp_path):
    model = _model("vgg11", 4, heads=["mlp_sr", "linear", "light2"])
    path = str(tmp_path / "lite")
    summary = export.save(
        model, path, ensemble=2, early_exits=[0, 2], tflite=True
    )
    assert summary.tflite_path == os.path.join(path, "model.tflite")
    assert 0 < summary.tflite_bytes == os.path.getsize(summary.tflite_path)
    loaded = tf.saved_model.load(path)
    images = np.random.default_rng(2).normal(size=(3,) + SHAPE)
    images = images.astype("float32")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_path=summary.tflite_path)
    assert set(interpreter.get_signature_list()) == set(loaded.signatures)
    for name in loaded.signatures:
        runner = interpreter.get_signature_runner(name)
        lite = runner(images=images)
        reference = loaded.signatures[name](images=tf.constant(images))
        for key in ("logits", "probabilities"):
            np.testing.assert_allclose(
                lite[key], reference[key].numpy(), atol=1e-4
            )
        np.testing.assert_array_equal(
            lite["predicted_class"], reference["predicted_class"].numpy()
        )


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"ensemble": 5}, "ensemble=5: a model with 4 block"),
        ({"ensemble": 0}, "Use an int in 1..4"),
        ({"early_exits": [3]}, "no early exit after block 3"),
        ({"early_exits": [-1]}, "use indices in 0..2"),
        ({"early_exits": "all"}, "must be True"),
    ],
)
def test_bad_requests_raise_clear_errors(kwargs, message, tmp_path):
    model = _model("vgg11", 4)
    with pytest.raises(ValueError, match=message):
        export.save(model, str(tmp_path / "bad"), **kwargs)
    assert not os.path.exists(tmp_path / "bad")


def test_a_network_exports_without_heads(tmp_path):
    model = _model("vgg11", 1)
    summary = export.save(model.network, str(tmp_path / "net"))
    assert summary.exported == export.parameter_count(model.network.weights)
    with pytest.raises(ValueError, match="no early exit after block 0"):
        export.save(model.network, str(tmp_path / "x"), early_exits=[0])
    with pytest.raises(ValueError, match="GreedyModel or"):
        export.save(keras.Sequential([keras.layers.Dense(2)]), "/tmp/x")


def test_workdir_without_a_model_is_a_clear_error(tmp_path):
    with pytest.raises(
        ValueError, match="no trained model in .*localgrad-train"
    ):
        export.load_trained_model(str(tmp_path))


def test_export_binary_reports_the_export_against_the_training_model(
    round_trip,
):
    _, models, exports, stdout, _ = round_trip
    training = export.parameter_count(models[BINARY_CASE].weights)
    heads = _params(models[BINARY_CASE].heads)
    assert heads.parameters > 0
    # Every head is used by an exit, so the export holds all of them.
    assert export.saved_parameter_count(exports[BINARY_CASE]) == training
    lines = stdout.splitlines()
    assert lines[1] == (
        "endpoints: serve, serve_ensemble, serve_exit_0, serve_exit_1, "
        "serve_exit_2"
    )
    assert lines[3].split()[:5] == [
        "training",
        "model",
        f"{training.variables:,}",
        f"{training.parameters:,}",
        f"{training.bytes:,}",
    ]
    size = export.directory_size(exports[BINARY_CASE])
    assert f"{size:,} (SavedModel)" in lines[4]
