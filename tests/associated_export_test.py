import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import localgrad

# Loads the SavedModel with TensorFlow alone (no localgrad on the path)
# and runs every endpoint.
RELOAD_SCRIPT = r"""
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np
import tensorflow as tf
args = json.loads(sys.argv[1])
images = tf.constant(np.load(args["images"]))
loaded = tf.saved_model.load(args["export"])
results = {}
for name in loaded.signatures:
    for key, value in loaded.signatures[name](images=images).items():
        results[f"{name}/{key}"] = value.numpy()
results["localgrad_imported"] = np.array(
    any(m.split(".")[0] == "localgrad" for m in sys.modules))
np.savez(args["output"], **results)
"""


def _trained_model(seed=0):
    keras.utils.set_random_seed(seed)
    units = [
        keras.Sequential(
            [
                keras.layers.Dense(10, activation="relu"),
                keras.layers.BatchNormalization(),
            ]
        )
        for _ in range(3)
    ]
    network = localgrad.Network(units, keras.layers.Dense(4), (5,))
    model = localgrad.AssociatedModel(network, num_blocks=3, label_width=6)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(64, 5)).astype("float32")
    y = (x[:, 0] > 0).astype("int32") + 2 * (x[:, 1] > 0).astype("int32")
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    return model, x


def _count(layers):
    """(variables, scalars) of the layers' weights, counted by hand."""
    weights = [w for layer in layers for w in layer.weights]
    return len(weights), sum(int(np.prod(w.shape)) for w in weights)


@pytest.fixture(scope="module")
def trained():
    """One trained model for every test: exporting does not change it."""
    return _trained_model()


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    model, x = trained
    root = tmp_path_factory.mktemp("al_export")
    path = str(root / "export")
    summary = localgrad.export.save(
        model, path, early_exits=[0], adaptive_threshold=0.5
    )
    np.save(root / "images.npy", x)
    args = {
        "images": str(root / "images.npy"),
        "export": path,
        "output": str(root / "outputs.npz"),
    }
    env = dict(os.environ, PYTHONPATH="", TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run(
        [sys.executable, "-c", RELOAD_SCRIPT, json.dumps(args)],
        check=True,
        cwd=str(root),
        env=env,
    )
    return model, x, summary, dict(np.load(args["output"]))


def test_serve_holds_exactly_the_effective_parameters(trained, tmp_path):
    model, _ = trained
    summary = localgrad.export.save(model, str(tmp_path / "serve"))
    assert summary.endpoints == ("serve",)
    effective = model.network.units + [model.bridges[-1]] + model.decoders
    variables, scalars = _count(effective)
    assert summary.exported.variables == variables
    assert summary.exported.parameters == scalars
    # The affiliated parameters are left out.
    _, affiliated = _count(
        model.encoders + model.bridges[:-1] + [model.network.classifier]
    )
    assert _count(model.layers)[1] - scalars >= affiliated > 0


def test_each_exit_adds_only_its_bridge(exported, tmp_path):
    model, _, summary, _ = exported
    assert summary.endpoints == ("serve", "serve_exit_0", "serve_adaptive")
    # The adaptive endpoint reads every non-last bridge.
    layers = model.network.units + model.bridges + model.decoders
    assert (summary.exported.variables, summary.exported.parameters) == (
        _count(layers)
    )
    exit_only = localgrad.export.save(
        model, str(tmp_path / "exit"), early_exits=[1]
    )
    layers = model.network.units + model.bridges[1:] + model.decoders
    assert (exit_only.exported.variables, exit_only.exported.parameters) == (
        _count(layers)
    )


def test_served_outputs_equal_predict_without_localgrad(exported):
    model, x, _, outputs = exported
    assert not outputs["localgrad_imported"]
    np.testing.assert_allclose(
        outputs["serving_default/logits"],
        model.predict(x, verbose=0),
        atol=1e-5,
    )
    np.testing.assert_allclose(
        outputs["serve_exit_0/logits"], model.shortcut(x, 0), atol=1e-5
    )
    scores = outputs["serving_default/logits"]
    np.testing.assert_allclose(
        outputs["serving_default/probabilities"],
        scores / scores.sum(-1, keepdims=True),
        atol=1e-6,
    )
    np.testing.assert_array_equal(
        outputs["serving_default/predicted_class"], scores.argmax(-1)
    )


def test_adaptive_exit_is_the_first_confident_depth(exported):
    model, x, _, outputs = exported
    shortcuts = [np.asarray(s) for s in model.head_outputs(x)]
    confident = [
        (s / s.sum(-1, keepdims=True)).max(-1) >= 0.5 for s in shortcuts
    ]
    confident[-1][:] = True
    first = np.argmax(np.stack(confident), axis=0)
    np.testing.assert_array_equal(outputs["serve_adaptive/exit_block"], first)
    expected = np.stack([shortcuts[k][i] for i, k in enumerate(first)])
    np.testing.assert_allclose(
        outputs["serve_adaptive/logits"], expected, atol=1e-5
    )


def test_adaptive_thresholds_at_the_ends(trained, tmp_path):
    model, x = trained
    summary = localgrad.export.save(
        model, str(tmp_path / "low"), adaptive_threshold=1e-6, tflite=True
    )
    loaded = tf.saved_model.load(summary.path)
    low = loaded.serve_adaptive(tf.constant(x))
    np.testing.assert_array_equal(low["exit_block"], 0)
    np.testing.assert_allclose(low["logits"], model.shortcut(x, 0), atol=1e-5)
    interpreter = tf.lite.Interpreter(model_path=summary.tflite_path)
    runner = interpreter.get_signature_runner("serving_default")
    np.testing.assert_allclose(
        runner(images=x[:4])["logits"], model.predict(x[:4]), atol=1e-5
    )
    high = localgrad.export.save(
        model, str(tmp_path / "high"), adaptive_threshold=1.0
    )
    reloaded = tf.saved_model.load(high.path)
    served = reloaded.serve_adaptive(tf.constant(x))
    np.testing.assert_array_equal(served["exit_block"], 2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(ensemble=2), "no heads to ensemble"),
        (dict(adaptive_threshold=0.0), "adaptive_threshold"),
        (dict(adaptive_threshold=1.5), "adaptive_threshold"),
        (dict(early_exits=[2]), "no early exit after block 2"),
    ],
)
def test_bad_export_arguments(trained, tmp_path, kwargs, match):
    model, _ = trained
    with pytest.raises(ValueError, match=match):
        localgrad.export.save(model, str(tmp_path / "bad"), **kwargs)


def test_adaptive_threshold_needs_an_associated_model(trained, tmp_path):
    network = trained[0].network
    with pytest.raises(ValueError, match="AssociatedModel"):
        localgrad.export.save(
            network, str(tmp_path / "net"), adaptive_threshold=0.5
        )
