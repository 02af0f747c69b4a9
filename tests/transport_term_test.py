import keras
import numpy as np
import pytest
import tensorflow as tf

import localgrad
from localgrad.transport_term import run_block_with_transport, transport_rule


@keras.saving.register_keras_serializable(package="localgrad_tests")
class DenseResidual(keras.layers.Layer):
    """A user's own residual unit: x + tanh(x W), opted in to transport."""

    is_residual = True

    def __init__(self, width, **kwargs):
        super().__init__(**kwargs)
        self.width = width
        self.dense = keras.layers.Dense(width, use_bias=False)

    def build(self, input_shape):
        self.dense.build(input_shape)

    def call(self, inputs, training=None, return_residual=False):
        residual = keras.ops.tanh(self.dense(inputs))
        outputs = inputs + residual
        return (outputs, residual) if return_residual else outputs


class ForgetsTheResidual(DenseResidual):
    def call(self, inputs, training=None, return_residual=False):
        return inputs + keras.ops.tanh(self.dense(inputs))


def _batch(shape, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=shape).astype("float32")


def test_residual_term_is_the_sum_of_mean_squared_branches():
    keras.utils.set_random_seed(0)
    units = [DenseResidual(5, name=f"unit_{i}") for i in range(3)]
    x = _batch((4, 5))
    outputs, term = run_block_with_transport(units, x)
    # By hand, in numpy: x_{m+1} = x_m + g_m, g_m = tanh(x_m W_m).
    features, expected = x, 0.0
    for unit in units:
        residual = np.tanh(features @ unit.dense.kernel.numpy())
        expected += np.mean(residual**2)
        features = features + residual
    np.testing.assert_allclose(outputs, features, rtol=1e-5)
    assert float(term) == pytest.approx(expected, rel=1e-5)


def test_resnet_term_matches_the_branches_computed_from_the_layers():
    keras.utils.set_random_seed(0)
    net = localgrad.models.build("resnet18", (8, 8, 1), 10, width=0.125)
    x = net.call_units(_batch((3, 8, 8, 1)), 0, 2, training=False)
    units = net.units[2:4]  # A stride-2 block (with a shortcut), then one.
    outputs, term = run_block_with_transport(units, x, training=False)
    features, expected = x, 0.0
    for unit in units:
        hidden = unit.bns[0](unit.convs[0](features), training=False)
        branch = unit.bns[1](unit.convs[1](keras.ops.relu(hidden)))
        expected += float(np.mean(np.square(branch)))
        shortcut = features
        if unit.shortcut_conv is not None:
            shortcut = unit.shortcut_bn(
                unit.shortcut_conv(features[:, ::2, ::2, :]), training=False
            )
        features = keras.ops.relu(shortcut + branch)
    np.testing.assert_allclose(outputs, features, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        outputs, net.call_units(x, 2, 4, training=False), atol=1e-6
    )
    assert float(term) == pytest.approx(expected, rel=1e-5)


def test_term_gradient_reaches_only_the_block_with_a_detached_input():
    keras.utils.set_random_seed(0)
    net = localgrad.models.build("resnet18", (8, 8, 1), 10, width=0.125)
    x = _batch((4, 8, 8, 1))
    block = net.units[2:4]
    in_block = {id(v) for unit in block for v in unit.trainable_variables}
    tau = 0.5

    def gradients(detach):
        with tf.GradientTape() as tape:
            features = net.call_units(x, 0, 2, training=True)
            if detach:
                features = tf.stop_gradient(features)
            _, term = run_block_with_transport(block, features, training=True)
            loss = term / (2 * tau)
        variables = net.trainable_variables
        return zip(variables, tape.gradient(loss, variables))

    reached = set()
    for variable, gradient in gradients(detach=True):
        if gradient is not None and np.any(gradient.numpy() != 0):
            reached.add(id(variable))
    assert reached <= in_block
    branch = [v for unit in block for c in unit.convs for v in c.weights]
    assert {id(v) for v in branch} <= reached
    # Without stop_gradient the term would train the earlier units too.
    leaked = [
        v
        for v, g in gradients(detach=False)
        if g is not None and id(v) not in in_block and np.any(g.numpy() != 0)
    ]
    assert leaked


def _dense_network(widths):
    units = [
        keras.layers.Dense(w, name=f"unit_{i}") for i, w in enumerate(widths)
    ]
    return localgrad.Network(units, keras.layers.Dense(3), input_shape=(6,))


def test_plain_block_that_keeps_its_shape_pays_its_displacement():
    keras.utils.set_random_seed(0)
    net = _dense_network([6, 6, 4])
    x = _batch((5, 6))
    outputs, term = run_block_with_transport(net.units[0:2], x)
    first = x @ net.units[0].kernel.numpy() + net.units[0].bias.numpy()
    second = first @ net.units[1].kernel.numpy() + net.units[1].bias.numpy()
    np.testing.assert_allclose(outputs, second, rtol=1e-5, atol=1e-6)
    assert float(term) == pytest.approx(np.mean((second - x) ** 2), rel=1e-5)


def test_plain_block_that_changes_its_shape_is_an_error_naming_it():
    net = _dense_network([6, 4])
    with pytest.raises(ValueError, match=r"block 1:.*\(6,\) -> \(4,\)"):
        run_block_with_transport(
            net.units[1:2], _batch((2, 6)), block_name="block 1"
        )
    with pytest.raises(ValueError, match="unit_1"):
        transport_rule(net.units[1:2], (6,), (4,), block_name="block 1")


def test_user_transport_function_replaces_the_displacement():
    net = _dense_network([6, 4])

    def squared_output(inputs, outputs):
        return keras.ops.mean(keras.ops.square(outputs))

    x = _batch((2, 6))
    outputs, term = run_block_with_transport(
        net.units[1:2], x, transport_fn=squared_output
    )
    assert outputs.shape == (2, 4)
    assert float(term) == pytest.approx(float(np.mean(outputs**2)), rel=1e-6)
    assert transport_rule(net.units[1:2], (6,), (4,), squared_output) == (
        "custom"
    )


def test_rules_of_residual_mixed_and_plain_blocks():
    residual = [DenseResidual(6), DenseResidual(6)]
    plain = keras.layers.Dense(6)
    assert transport_rule(residual, (6,), (6,)) == "residual"
    assert transport_rule(residual + [plain], (6,), (6,)) == "displacement"
    with pytest.raises(ValueError, match="no units"):
        transport_rule([], (6,), (6,))


def test_residual_unit_that_does_not_return_its_branch_is_an_error():
    with pytest.raises(ValueError, match="did not return the pair"):
        run_block_with_transport([ForgetsTheResidual(3)], _batch((2, 3)))
