"""Tests of Network.from_functional and the cut points of a Keras graph."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import localgrad

SHAPE = (8, 8, 3)
CLASSES = 3
# By hand: a1, a1_relu and a2 sit inside skip A (stem_relu -> a_add), b1
# inside skip B (pool -> b_add); `logits` is the output.
HAND_CUT_POINTS = [
    "stem",
    "stem_relu",
    "a_add",
    "pool",
    "b_add",
    "b_relu",
    "gap",
]


def _two_skips(shape=SHAPE, classes=CLASSES):
    image = keras.Input(shape, name="image")
    x = keras.layers.Conv2D(4, 3, padding="same", name="stem")(image)
    x = keras.layers.ReLU(name="stem_relu")(x)
    y = keras.layers.Conv2D(4, 3, padding="same", name="a1")(x)
    y = keras.layers.ReLU(name="a1_relu")(y)
    y = keras.layers.Conv2D(4, 3, padding="same", name="a2")(y)
    x = keras.layers.Add(name="a_add")([x, y])
    x = keras.layers.MaxPooling2D(name="pool")(x)
    y = keras.layers.Conv2D(4, 3, padding="same", name="b1")(x)
    y = keras.layers.BatchNormalization(name="b1_bn")(y)
    x = keras.layers.Add(name="b_add")([x, y])
    x = keras.layers.ReLU(name="b_relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    logits = keras.layers.Dense(classes, name="logits")(x)
    return keras.Model(image, logits, name="two_skips")


def _images(batch, shape=SHAPE, seed=0):
    return np.random.default_rng(seed).random((batch,) + shape, "float32")


def _compile(model, learning_rate=0.1):
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        run_eagerly=True,
    )


def _block_variables(model, block, ranges):
    start, end = ranges[block]
    units = model.network.units[start:end]
    head = (
        model.network.classifier
        if block == len(ranges) - 1
        else model.heads[block]
    )
    return [v for layer in units + [head] for v in layer.trainable_variables]


def _check_one_isolated_step(model, x, y, learning_rate):
    """One greedy SGD step; blocks 0 and 1 move by their own loss only.

    The expected update of a block is -lr times the gradient of its head's
    loss, computed here by hand with the block's input held constant. Had a
    later block's loss reached across the cut, the update would differ.
    """
    ranges = list(
        zip(
            [0] + model.boundaries, model.boundaries + [model.network.num_units]
        )
    )
    saved = [np.array(v) for v in model.variables]
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    expected, features = [], tf.constant(x)
    for block in (0, 1):
        start, end = ranges[block]
        variables = _block_variables(model, block, ranges)
        with tf.GradientTape() as tape:
            outputs = model.network.call_units(features, start, end, True)
            loss = loss_fn(y, model.heads[block](outputs, training=True))
        grads = tape.gradient(loss, variables)
        expected.append(
            [
                np.array(v) - learning_rate * np.array(g)
                for v, g in zip(variables, grads)
            ]
        )
        features = tf.stop_gradient(outputs)
    for variable, value in zip(model.variables, saved):
        variable.assign(value)
    logs = model.train_on_batch(x, y, return_dict=True)
    assert np.isfinite(logs["loss"])
    for block in (0, 1):
        variables = _block_variables(model, block, ranges)
        assert variables
        for variable, value in zip(variables, expected[block]):
            np.testing.assert_allclose(
                np.array(variable), value, rtol=1e-4, atol=1e-6
            )


def test_cut_points_of_two_skip_connections_are_the_hand_derived_ones():
    model = _two_skips()
    assert localgrad.Network.cut_points(model) == HAND_CUT_POINTS
    net = localgrad.Network.from_functional(model)
    # The classifier follows the last cut with a feature map (b_relu).
    assert net.unit_names == HAND_CUT_POINTS[:-1]
    assert [layer.name for layer in net.classifier.layers[1:]] == [
        "gap",
        "logits",
    ]
    assert net.unit_output_shapes[3] == (4, 4, 4)
    assert net.num_classes == CLASSES
    assert net.architecture == "two_skips"


def test_units_share_the_layers_and_predict_what_the_model_predicts():
    model = _two_skips()
    net = localgrad.Network.from_functional(model, cut_at=["a_add"])
    assert net.unit_names == ["a_add", "b_relu"]
    original = {id(v) for v in model.trainable_variables}
    parts = [v for u in net.units + [net.classifier] for v in u.weights]
    assert {id(v) for v in parts} == {id(v) for v in model.weights}
    assert len(parts) == len(model.weights)  # no weight in two units
    assert {id(v) for v in net.trainable_variables} == original
    x = _images(5)
    np.testing.assert_array_equal(
        net.predict(x, verbose=0), model.predict(x, verbose=0)
    )


def test_classifier_from_moves_the_classifier():
    model = _two_skips()
    net = localgrad.Network.from_functional(model, classifier_from="logits")
    assert net.unit_names == HAND_CUT_POINTS
    assert net.unit_output_shapes[-1] == (4,)
    # From b1 on (skip B included): the classifier starts after `pool`.
    net = localgrad.Network.from_functional(model, classifier_from="b1")
    assert net.unit_names == HAND_CUT_POINTS[:4]
    with pytest.raises(ValueError, match="'stem_relu' \\(before\\)"):
        localgrad.Network.from_functional(model, classifier_from="a1_relu")


@pytest.mark.parametrize(
    "name, listed",
    [
        ("a1_relu", "'stem_relu' \\(before\\) and 'a_add' \\(after\\)"),
        ("b1_bn", "'pool' \\(before\\) and 'b_add' \\(after\\)"),
        ("a_ad", "did you mean 'a_add'"),
        ("gap", "start of the classifier \\(which follows 'b_relu'\\)"),
    ],
)
def test_a_bad_cut_at_is_refused_with_the_valid_neighbours(name, listed):
    with pytest.raises(ValueError, match=listed):
        localgrad.Network.from_functional(_two_skips(), cut_at=[name])


def test_cut_at_out_of_order_is_refused():
    with pytest.raises(ValueError, match="in the order"):
        localgrad.Network.from_functional(_two_skips(), cut_at=["pool", "stem"])


def test_several_inputs_or_outputs_sequential_and_subclassed_are_refused():
    a, b = keras.Input((4,)), keras.Input((4,))
    joined = keras.layers.Dense(2)(keras.layers.Concatenate()([a, b]))
    with pytest.raises(ValueError, match="2 inputs and 1 outputs"):
        localgrad.Network.from_functional(keras.Model([a, b], joined))
    hidden = keras.layers.Dense(4)(a)
    two_heads = [keras.layers.Dense(2)(hidden), keras.layers.Dense(3)(hidden)]
    with pytest.raises(ValueError, match="1 inputs and 2 outputs"):
        localgrad.Network.cut_points(keras.Model(a, two_heads))

    sequential = keras.Sequential([a, keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="from_sequential"):
        localgrad.Network.from_functional(sequential)

    class Subclassed(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ValueError, match="not a functional model"):
        localgrad.Network.from_functional(Subclassed())


def test_a_layer_called_twice_is_refused():
    x = keras.Input((4,))
    shared = keras.layers.Dense(4, name="shared")
    y = keras.layers.Dense(2, name="out")(shared(shared(x)))
    with pytest.raises(ValueError, match="'out' .* called more than once"):
        localgrad.Network.from_functional(keras.Model(x, y))


def test_a_model_without_a_fixed_input_shape_is_refused():
    x = keras.Input((None, None, 3))
    y = keras.layers.Conv2D(2, 1)(x)
    y = keras.layers.GlobalAveragePooling2D()(y)
    y = keras.layers.Dense(2)(y)
    with pytest.raises(ValueError, match="fixed input shape"):
        localgrad.Network.from_functional(keras.Model(x, y))


def test_an_mlp_keeps_its_last_dense_as_the_classifier():
    x = keras.Input((6,))
    h = keras.layers.Dense(5, name="h1")(x)
    h = keras.layers.Dense(5, name="h2")(h)
    model = keras.Model(x, keras.layers.Dense(2, name="out")(h))
    net = localgrad.Network.from_functional(model)
    assert net.unit_names == ["h1", "h2"]


def test_greedy_model_trains_saves_and_exports(tmp_path):
    model = _two_skips()
    net = localgrad.Network.from_functional(model)
    greedy = localgrad.GreedyModel(net, boundaries=[2, 4], heads="linear")
    _compile(greedy)
    x, y = _images(16), np.arange(16) % CLASSES
    _check_one_isolated_step(greedy, x, y, learning_rate=0.1)
    # Then as users train: every block's step compiled, with XLA.
    greedy.compile(
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=True,
    )
    history = greedy.fit(x, y, epochs=3, batch_size=8, verbose=0).history
    assert history["block_2_loss"][-1] < history["block_2_loss"][0]
    # The original model learnt too: it holds the same weights.
    np.testing.assert_allclose(
        model.predict(x, verbose=0), greedy.predict(x, verbose=0), atol=1e-6
    )
    path = str(tmp_path / "model.keras")
    greedy.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.network.unit_names == net.unit_names
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), greedy.predict(x, verbose=0), atol=1e-6
    )
    summary = localgrad.export.save(greedy, str(tmp_path / "export"))
    exported = tf.saved_model.load(summary.path)
    served = exported.serve(tf.constant(x))
    np.testing.assert_allclose(
        served["logits"], greedy.predict(x, verbose=0), atol=1e-5
    )


def test_memory_balance_profiles_functional_units():
    net = localgrad.Network.from_functional(_two_skips())
    greedy = localgrad.GreedyModel(
        net, num_blocks=2, heads="linear", balance="memory"
    )
    assert len(greedy.boundaries) == 1


def test_a_search_runs_on_a_functional_network(tmp_path):
    x, y = localgrad.data.load_arrays("digits", "train")
    keras.utils.set_random_seed(0)
    net = localgrad.Network.from_functional(_two_skips(x.shape[1:], 10))
    search = localgrad.search.Search(
        net,
        heads=("linear", "light1"),
        head_width=0.05,
        batch_size=32,
        warmup_steps=2,
        memory_size=1,
        meta_iterations=1,
        inner_steps=1,
        first_order=True,
        jit_compile=False,
    )
    result = search.run(x, y, workdir=str(tmp_path))
    found = localgrad.search.read_decoupling(
        str(tmp_path / "decoupling.json"), net
    )
    assert found.unit_names == tuple(HAND_CUT_POINTS[:-1])
    assert np.abs(result.alpha_softmax - 0.5).max() > 0
    model = localgrad.GreedyModel.from_decoupling(
        net, str(tmp_path / "decoupling.json"), num_blocks=3
    )
    assert len(model.heads) == 2


# keras.applications at 32×32. Each family's skip connections are read off
# the layer names, independently of the graph walk: a block with a residual
# add keeps only its last layers as cut points (ResNet: `_add` and `_out`;
# MobileNetV2 and EfficientNet: `_add`), and EfficientNet's squeeze-excite
# branch (`_se_squeeze` .. `_se_expand`) lies inside `_se_excite`'s skip.
def _expected_units(model, classifier_layers):
    names = [layer.name for layer in model.layers][1:]  # no input layer
    residual = {n.rsplit("_", 1)[0] for n in names if n.endswith("_add")}
    inside = 0
    for name in names:
        block = next((r for r in residual if name.startswith(r + "_")), None)
        if block is not None:
            inside += not name.endswith(("_add", "_out"))
        elif "_se_" in name:
            inside += not name.endswith("_se_excite")
    return len(names) - classifier_layers - inside


APPLICATIONS = {
    # constructor, classifier layers, blocks ending in a residual add
    "ResNet50": (keras.applications.ResNet50, 2, 16),
    "MobileNetV2": (keras.applications.MobileNetV2, 2, 10),
    "EfficientNetB0": (keras.applications.EfficientNetB0, 3, 9),
}


@pytest.mark.parametrize("name", sorted(APPLICATIONS))
def test_keras_applications_wrap_predict_and_train_greedily(name):
    build, classifier_layers, residual_blocks = APPLICATIONS[name]
    keras.utils.set_random_seed(0)
    model = build(
        weights=None,
        input_shape=(32, 32, 3),
        classes=CLASSES,
        classifier_activation=None,
    )
    net = localgrad.Network.from_functional(model)
    assert net.num_units == _expected_units(model, classifier_layers)
    adds = [n for n in net.unit_names if n.endswith("_add")]
    assert len(adds) == residual_blocks
    x, y = _images(4, (32, 32, 3)), np.arange(4) % CLASSES
    np.testing.assert_array_equal(net(x), model(x))
    # Cut by hand after the first, second and third quarter of the adds.
    cut_at = [adds[len(adds) * q // 4] for q in (1, 2, 3)]
    coarse = localgrad.Network.from_functional(model, cut_at=cut_at)
    assert coarse.unit_names == cut_at + [net.unit_names[-1]]
    greedy = localgrad.GreedyModel(coarse, num_blocks=4, heads="linear")
    _compile(greedy, learning_rate=0.01)
    _check_one_isolated_step(greedy, x, y, learning_rate=0.01)
