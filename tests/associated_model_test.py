import keras
import numpy as np
import pytest
import tensorflow as tf
from lockstep import assert_same_steps
from sklearn.datasets import load_digits

import localgrad

WIDTH = 8  # The label width n of the small models.


def _network(num_units=4, seed=0):
    keras.utils.set_random_seed(seed)
    units = [
        keras.layers.Dense(12, activation="relu", name=f"unit_{k}")
        for k in range(num_units)
    ]
    return localgrad.Network(units, keras.layers.Dense(3), input_shape=(6,))


def _batch(size=32, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(size, 6)).astype("float32")
    y = (x[:, 0] > 0).astype("int32") + (x[:, 1] > 0.5).astype("int32")
    return x, y


def _values(variables):
    return [np.array(v.numpy()) for v in variables]


def _assert_all_close(first, second, atol=1e-6):
    assert len(first) == len(second)
    for a, b in zip(first, second):
        np.testing.assert_allclose(a, b, atol=atol)


def _sgd_step(variables, loss_fn, learning_rate):
    """w - lr * dloss/dw for `variables` (a hand-built plain SGD step)."""
    with tf.GradientTape() as tape:
        loss = loss_fn()
    gradients = tape.gradient(loss, variables)
    return {
        id(v): v.numpy() - learning_rate * g.numpy()
        for v, g in zip(variables, gradients)
    }


def _mse(a, b):
    return tf.reduce_mean(tf.square(a - tf.stop_gradient(b)))


def _component_by_hand(model, k, features, labels, learning_rate):
    """Component k's step built by hand: each loss alone on its side.

    Returns the expected new values by variable id, and s_k and t_k.
    """
    start, end = model.block_ranges[k]
    units = model.network.units[start:end]
    encoder, bridge = model.encoders[k], model.bridges[k]
    decoder = model.decoders[k]

    def forward():
        outputs = features
        for unit in units:
            outputs = unit(outputs)
        return outputs

    codes = encoder(labels)
    forward_side = [v for u in units for v in u.trainable_variables]
    expected = _sgd_step(
        forward_side + bridge.trainable_variables,
        lambda: _mse(bridge(forward()), codes),
        learning_rate,
    )
    expected.update(
        _sgd_step(
            encoder.trainable_variables + decoder.trainable_variables,
            lambda: _mse(decoder(encoder(labels)), labels),
            2 * learning_rate,
        )
    )
    return expected, forward(), codes


def test_each_loss_trains_only_its_own_parameters():
    model = localgrad.AssociatedModel(
        _network(), boundaries=[1, 3], label_width=WIDTH
    )
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    x, y = _batch()
    initial = _values(model.weights)
    model.train_on_batch(x, y)
    trained = {id(v): v.numpy() for v in model.weights}
    for variable, value in zip(model.weights, initial):
        variable.assign(value)

    # Each component trained by hand from the same weights: the associated
    # loss alone on f_i, b_i (lr 0.5), the autoencoder loss alone on g_i,
    # h_i (lr 1.0), on the inputs the components before it hand over.
    features, labels, expected = tf.constant(x), tf.one_hot(y, 3), {}
    for k in range(model.num_blocks):
        new, features, labels = _component_by_hand(
            model, k, features, labels, 0.5
        )
        expected.update(new)

    changed = 0
    for variable, value in zip(model.weights, initial):
        if id(variable) in expected:
            np.testing.assert_allclose(
                trained[id(variable)], expected[id(variable)], atol=1e-6
            )
            changed += int(not np.allclose(value, expected[id(variable)]))
        else:  # The network's own classifier is not trained.
            np.testing.assert_array_equal(trained[id(variable)], value)
    assert changed == len(expected)


def test_predict_is_the_decoders_on_the_last_bridge():
    model = localgrad.AssociatedModel(
        _network(), num_blocks=4, label_width=WIDTH
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2), metrics=["accuracy"])
    x, y = _batch(size=64)
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)

    def by_hand(depth):
        features = x
        for unit in model.network.units[: depth + 1]:
            features = unit(features)
        codes = model.bridges[depth](features)
        for decoder in model.decoders[: depth + 1][::-1]:
            codes = decoder(codes)
        return codes.numpy()

    np.testing.assert_allclose(
        model.predict(x, verbose=0), by_hand(3), atol=1e-6
    )
    shortcuts = model.head_outputs(x)
    for depth in range(4):
        np.testing.assert_allclose(
            model.shortcut(x, depth), by_hand(depth), atol=1e-6
        )
        np.testing.assert_allclose(shortcuts[depth], by_hand(depth), atol=1e-6)

    logs = model.evaluate(x, y, batch_size=64, return_dict=True, verbose=0)
    for depth in range(4):
        accuracy = np.mean(by_hand(depth).argmax(-1) == y)
        assert logs[f"block_{depth}_accuracy"] == pytest.approx(accuracy)
        total = (
            logs[f"block_{depth}_associated_loss"]
            + logs[f"block_{depth}_autoencoder_loss"]
        )
        assert logs[f"block_{depth}_loss"] == pytest.approx(total, rel=1e-5)
    assert logs["accuracy"] == logs["block_3_accuracy"]


def _digits():
    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    return x[:1400], digits.target[:1400], x[1400:], digits.target[1400:]


def _digits_model(mode="function", optimizer=None):
    keras.utils.set_random_seed(0)
    units = [keras.layers.Dense(64, activation="elu") for _ in range(4)]
    network = localgrad.Network(units, keras.layers.Dense(10), (64,))
    model = localgrad.AssociatedModel(network, num_blocks=4, label_width=64)
    model.compile(
        optimizer=optimizer or keras.optimizers.Adam(1e-2),
        metrics=["accuracy"],
        run_eagerly=mode == "eager",
        jit_compile=mode == "jit",
    )
    return model


def test_associated_learning_learns_digits():
    x, y, x_test, y_test = _digits()
    model = _digits_model()
    model.fit(x, y, batch_size=32, epochs=5, verbose=0)
    logs = model.evaluate(x_test, y_test, return_dict=True, verbose=0)
    assert logs["accuracy"] > 0.5  # Chance is 0.1.
    assert logs["block_0_accuracy"] > 0.5


@pytest.mark.numerics
@pytest.mark.parametrize("mode", ["eager", "jit"])
def test_eager_and_xla_steps_are_the_compiled_steps(mode):
    # Eager training is slow and XLA's compile long; that they learn
    # follows from taking the same steps as the tf.function model, which
    # the test above shows learns. XLA orders its sums differently from
    # the graph runtime, and over many steps that rounding compounds: each
    # step starts both models from the graph model's state and compares
    # that one step. (SGD: Adam turns float rounding in near-zero
    # gradients into whole steps.)
    x, y, _, _ = _digits()
    models = [
        _digits_model(mode, keras.optimizers.SGD(0.05)),
        _digits_model(optimizer=keras.optimizers.SGD(0.05)),
    ]
    initial = _values(models[1].trainable_variables)
    assert_same_steps(*models, x, y, batch_size=32, steps=4, atol=1e-5)
    assert not np.allclose(models[1].trainable_variables[0], initial[0])


@pytest.mark.numerics
def test_pipelined_on_devices_trains_as_the_synchronous_executor():
    x, y = _batch(size=48)
    weights = []
    for schedule, devices in [
        ("parallel", None),
        ("pipelined", ["/cpu:0", "/cpu:1", "/cpu:2"]),
    ]:
        model = localgrad.AssociatedModel(
            _network(num_units=3),
            num_blocks=3,
            label_width=WIDTH,
            devices=devices,
        )
        model.compile(optimizer=keras.optimizers.Adam(1e-2))
        model.fit(
            x,
            y,
            batch_size=16,
            epochs=2,
            shuffle=False,
            verbose=0,
            callbacks=[localgrad.callbacks.GreedySchedule(schedule)],
        )
        assert not model.in_flight
        weights.append(_values(model.weights))
    _assert_all_close(weights[0], weights[1], atol=1e-5)
    assert model.bridges[2].weights[0].value.device.endswith("CPU:2")
    assert model.encoders[1].weights[0].value.device.endswith("CPU:1")


def test_keras_file_and_weights_round_trip(tmp_path):
    model = localgrad.AssociatedModel(
        _network(),
        boundaries=[2],
        label_width=WIDTH,
        decoder_learning_rate_factor=3.0,
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2), metrics=["accuracy"])
    x, y = _batch()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    path = str(tmp_path / "al.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, localgrad.AssociatedModel)
    assert loaded.label_width == WIDTH and loaded.boundaries == [2]
    assert loaded.decoder_learning_rate_factor == 3.0
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6
    )
    for ours, theirs in zip(model._block_optimizers, loaded._block_optimizers):
        _assert_all_close(_values(ours.variables), _values(theirs.variables))
    assert float(loaded.blocks[0].optimizer.label_side.learning_rate) == (
        pytest.approx(3e-2)
    )

    weights_path = str(tmp_path / "al.weights.h5")
    model.save_weights(weights_path)
    fresh = localgrad.AssociatedModel(
        _network(seed=5), boundaries=[2], label_width=WIDTH
    )
    fresh.compile(optimizer=keras.optimizers.Adam(1e-2))
    fresh.load_weights(weights_path)
    _assert_all_close(_values(fresh.weights), _values(model.weights))
    np.testing.assert_allclose(
        fresh.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6
    )


def test_decoders_learning_rate_follows_a_schedule():
    schedule = keras.optimizers.schedules.CosineDecay(0.1, decay_steps=10)
    model = localgrad.AssociatedModel(
        _network(), num_blocks=2, label_width=WIDTH
    )
    model.compile(optimizer=keras.optimizers.Adam(schedule))
    model.train_on_batch(*_batch())
    optimizer = model.blocks[1].optimizer
    assert float(optimizer.label_side.learning_rate) == pytest.approx(
        2 * float(optimizer.forward.learning_rate)
    )
    assert optimizer.iterations.numpy() == 1


@pytest.mark.parametrize("width", [0, -3, 2.5, True, None])
def test_bad_label_width(width):
    with pytest.raises(ValueError, match="label_width"):
        localgrad.AssociatedModel(_network(), num_blocks=2, label_width=width)


@pytest.mark.parametrize("loss", ["mse", keras.losses.Huber(), None])
def test_non_classification_loss(loss):
    model = localgrad.AssociatedModel(
        _network(), num_blocks=2, label_width=WIDTH
    )
    with pytest.raises(ValueError, match="not a classification loss"):
        model.compile(optimizer="adam", loss=loss)


def test_one_hot_labels_with_categorical_loss():
    model = localgrad.AssociatedModel(
        _network(), num_blocks=2, label_width=WIDTH
    )
    model.compile(
        optimizer="adam",
        loss=keras.losses.CategoricalCrossentropy(),
        metrics=["accuracy"],
    )
    x, y = _batch()
    logs = model.evaluate(
        x, keras.ops.one_hot(y, 3), return_dict=True, verbose=0
    )
    twin = localgrad.AssociatedModel(
        _network(), num_blocks=2, label_width=WIDTH
    )
    twin.set_weights(model.get_weights())
    twin.compile(optimizer="adam", metrics=["accuracy"])
    expected = twin.evaluate(x, y, return_dict=True, verbose=0)
    assert logs == pytest.approx(expected)


def test_output_that_cannot_be_flattened():
    keras.utils.set_random_seed(0)
    units = [
        keras.layers.Conv2D(4, 3, padding="same"),
        keras.layers.Conv2D(4, 3, padding="same"),
        keras.layers.GlobalAveragePooling2D(),
    ]
    network = localgrad.Network(
        units, keras.layers.Dense(3), input_shape=(None, None, 1)
    )
    with pytest.raises(ValueError, match="cannot be flattened to a bridge"):
        localgrad.AssociatedModel(network, boundaries=[1], label_width=4)
    # Cut after the pooling's fixed-size output, it is fine.
    localgrad.AssociatedModel(network, boundaries=[], label_width=4)


def test_every_component_trains_on_every_batch():
    model = localgrad.AssociatedModel(
        _network(), num_blocks=2, label_width=WIDTH
    )
    with pytest.raises(ValueError, match="every component"):
        model.trained_blocks = [1]
    model.trained_blocks = [0, 1]
    assert model.trained_blocks == [0, 1]


def test_label_side_and_bridges_start_he_normal():
    # The official code's initialization: std sqrt(2 / fan_in) (Keras'
    # Glorot-uniform would give g_1 sqrt(2 / (10 + 300)), 5.6x smaller).
    keras.utils.set_random_seed(0)
    net = localgrad.models.build("mlp", (8,), 10, width=0.25)
    model = localgrad.AssociatedModel(net, num_blocks=2, label_width=300)
    kernels = {
        "g_1": (model.encoders[0].kernel, 10),
        "g_2": (model.encoders[1].kernel, 300),
        "h_1": (model.decoders[0].kernel, 300),
        "b_1": (model.bridges[0].layers[1].kernel, 256),
    }
    for name, (kernel, fan_in) in kernels.items():
        std = float(np.std(kernel.numpy()))
        assert std == pytest.approx(np.sqrt(2 / fan_in), rel=0.1), name
