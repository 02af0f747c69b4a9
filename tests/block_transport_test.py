"""Tests for localgrad.block_transport.BlockTransport."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import localgrad
from localgrad import Transport


def _residual_network():
    keras.utils.set_random_seed(0)
    return localgrad.models.build("resnet18", (8, 8, 1), 4, width=0.125)


def test_uzawa_update_follows_its_formula_over_training_steps():
    net = _residual_network()
    head = keras.layers.Dense(4)
    units = net.units[2:4]
    transport = Transport(uzawa_step=0.5, uzawa_every=2)
    block = transport.for_block(1, num_blocks=3)
    optimizer = keras.optimizers.SGD(0.05)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    rng = np.random.default_rng(0)
    features = net.call_units(
        rng.normal(size=(8, 8, 8, 1)).astype("float32"), 0, 2
    )
    labels = rng.integers(0, 4, 8)

    @tf.function
    def step(inputs):
        with tf.GradientTape() as tape:
            outputs, term = block.run(units, inputs, training=True)
            logits = head(keras.ops.mean(outputs, axis=(1, 2)))
            cross_entropy = loss_fn(labels, logits)
            loss = block.regularized_loss(cross_entropy, term)
        variables = [v for u in units for v in u.trainable_variables]
        variables += head.trainable_variables
        optimizer.apply_gradients(
            zip(tape.gradient(loss, variables), variables)
        )
        block.update_multiplier(cross_entropy)
        return cross_entropy, term, loss

    expected = 2.0  # λ_1 = λ_0 (k + 1)^p = 2.
    for count in range(1, 6):
        cross_entropy, term, loss = [float(v) for v in step(features)]
        # The step's loss uses λ from before its own update.
        assert loss == pytest.approx(cross_entropy + term / expected, 1e-5)
        if count % 2 == 0:
            expected += 0.5 * cross_entropy
        assert float(block.multiplier.value) == pytest.approx(expected, 1e-6)
        assert int(block.uzawa_steps.value) == count
    assert expected > 2.0
    block.update_state(term)
    logs = block.logs()
    assert float(logs["block_1_uzawa_lambda"]) == pytest.approx(expected)
    assert float(logs["block_1_transport"]) == pytest.approx(term)


def test_infinite_tau_gives_a_zero_term_and_the_plain_loss():
    net = _residual_network()
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 1)).astype("float32")
    block = Transport(tau=math.inf).for_block(0, 2)
    assert not block.active
    outputs, term = block.run(net.units[0:2], x, training=False)
    assert float(term) == 0.0
    np.testing.assert_array_equal(
        outputs, net.call_units(x, 0, 2, training=False)
    )
    loss = tf.constant(1.2345)
    assert block.regularized_loss(loss, term) is loss
    assert Transport(tau=math.inf, varying=True).check_blocks(
        net, [(0, 4), (4, 8)]
    ) == ["none", "none"]


def test_fixed_tau_adds_half_the_term_over_tau():
    net = _residual_network()
    x = np.random.default_rng(1).normal(size=(2, 8, 8, 1)).astype("float32")
    block = Transport(tau=4.0).for_block(0, 2)
    _, term = block.run(net.units[0:2], x, training=False)
    assert float(term) > 0
    loss = block.regularized_loss(tf.constant(1.0), term)
    assert float(loss) == pytest.approx(1.0 + float(term) / 8.0, rel=1e-6)
    assert block.weights == []  # Nothing to learn or checkpoint.


class _Holder(keras.Model):
    def __init__(self, transports, **kwargs):
        super().__init__(**kwargs)
        self.transports = transports
        self.built = True


def test_multipliers_are_non_trainable_weights_that_save_and_load(tmp_path):
    transport = Transport(uzawa_step=1.0, uzawa_every=1)
    holder = _Holder([transport.for_block(k, 2) for k in range(2)])
    assert len(holder.weights) == 4 and holder.trainable_weights == []
    holder.transports[1].update_multiplier(3.0)
    path = str(tmp_path / "transport.weights.h5")
    holder.save_weights(path)
    fresh = _Holder([transport.for_block(k, 2) for k in range(2)])
    assert float(fresh.transports[1].multiplier.value) == 2.0
    fresh.load_weights(path)
    assert float(fresh.transports[1].multiplier.value) == 5.0
    assert int(fresh.transports[1].uzawa_steps.value) == 1


@pytest.mark.numerics
@pytest.mark.parametrize("mode", ["eager", "function", "jit"])
def test_regularized_loss_is_the_same_compiled(mode):
    net = _residual_network()
    x = np.random.default_rng(2).normal(size=(2, 8, 8, 1)).astype("float32")
    block = Transport(uzawa_step=1.0).for_block(1, 2)

    def loss(inputs):
        _, term = block.run(net.units[0:2], inputs, training=False)
        return block.regularized_loss(tf.constant(0.5), term), term

    if mode != "eager":
        loss = tf.function(loss, jit_compile=mode == "jit")
    value, term = loss(x)
    # λ_1 = 2 at the start: 0.5 + term / 2.
    assert float(value) == pytest.approx(0.5 + float(term) / 2, rel=1e-5)
    block.multiplier.assign(4.0)  # The compiled loss reads the variable.
    value, term = loss(x)
    assert float(value) == pytest.approx(0.5 + float(term) / 4, rel=1e-5)
