import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import localgrad
from localgrad import Transport


def test_varying_tau_halves_the_first_half_of_the_blocks():
    for num_blocks, halved in [(4, 2), (5, 2), (8, 4), (1, 0)]:
        transport = Transport(tau=3.0, varying=True)
        taus = [transport.block_tau(k, num_blocks) for k in range(num_blocks)]
        assert taus == [1.5] * halved + [3.0] * (num_blocks - halved)
    assert Transport(tau=3.0).block_tau(0, 8) == 3.0
    weights = [
        Transport(tau=2.0, varying=True).for_block(k, 2).weight()
        for k in range(2)
    ]
    assert weights == [pytest.approx(1 / 2), pytest.approx(1 / 4)]


def test_per_block_taus():
    transport = Transport(tau=[1.0, 2.0, math.inf])
    assert [transport.block_tau(k, 3) for k in range(3)] == [1.0, 2.0, math.inf]
    with pytest.raises(ValueError, match="one tau per block"):
        transport.block_tau(0, 4)


def test_initial_multipliers_increase_or_decrease_with_depth():
    increasing = Transport(uzawa_step=1.0)
    assert [increasing.initial_multiplier(k, 4) for k in range(4)] == [
        1.0,
        2.0,
        3.0,
        4.0,
    ]
    assert increasing.uzawa_every == 50
    decreasing = Transport(
        uzawa_step=1.0,
        uzawa_init="decreasing",
        uzawa_lambda0=0.5,
        uzawa_power=2.0,
    )
    assert [decreasing.initial_multiplier(k, 3) for k in range(3)] == [
        4.5,
        2.0,
        0.5,
    ]


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


def test_settings_round_trip_through_keras_serialization():
    for transport in [
        Transport(tau=1.0, varying=True),
        Transport(tau=[1.0, 2.0]),
        Transport(uzawa_step=0.5, uzawa_every=10, uzawa_init="decreasing"),
    ]:
        config = keras.saving.serialize_keras_object(transport)
        copy = keras.saving.deserialize_keras_object(config)
        assert copy.get_config() == transport.get_config()
    block = Transport(uzawa_step=1.0).for_block(2, 4)
    copy = localgrad.BlockTransport.from_config(block.get_config())
    assert (copy.block, copy.num_blocks, copy.name) == (2, 4, block.name)
    assert float(copy.multiplier.value) == 3.0


def test_check_blocks_names_a_block_whose_term_is_undefined():
    net = localgrad.models.build("vgg11", (16, 16, 1), 10, width=0.125)
    transport = Transport(tau=1.0)
    with pytest.raises(ValueError, match=r"block 0 \(units 0..3\)"):
        transport.check_blocks(net, [(0, 4), (4, 8)])
    shapes = net.unit_output_shapes
    keeps = [k for k in range(1, 8) if shapes[k] == shapes[k - 1]]
    assert keeps  # vgg11 has convolutions that keep the shape
    unit = keeps[0]
    only_middle = Transport(tau=[math.inf, 1.0, math.inf])
    assert only_middle.check_blocks(
        net, [(0, unit), (unit, unit + 1), (unit + 1, 8)]
    ) == ["none", "displacement", "none"]
    custom = Transport(tau=1.0, transport_fn=lambda inputs, outputs: 0.0)
    assert custom.check_blocks(net, [(0, 4), (4, 8)]) == ["custom", "custom"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "exactly one of tau"),
        ({"tau": 1.0, "uzawa_step": 1.0}, "exactly one of tau"),
        ({"tau": 0.0}, "tau must be > 0"),
        ({"tau": -1.0}, "tau must be > 0"),
        ({"tau": float("nan")}, "tau must be > 0"),
        ({"tau": "1"}, "tau must be a number"),
        ({"tau": [1.0, 2.0], "varying": True}, "halve them yourself"),
        ({"tau": 1.0, "uzawa_every": 5}, "uzawa_every=5 is for"),
        ({"uzawa_step": 1.0, "varying": True}, "varying=True halves"),
        ({"uzawa_step": 0.0}, "uzawa_step must be"),
        ({"uzawa_step": 1.0, "uzawa_every": 0}, "uzawa_every must be"),
        ({"uzawa_step": 1.0, "uzawa_init": "up"}, "Unknown uzawa_init"),
        ({"uzawa_step": 1.0, "uzawa_lambda0": 0.0}, "uzawa_lambda0"),
        ({"uzawa_step": 1.0, "uzawa_power": -1.0}, "uzawa_power"),
        ({"tau": 1.0, "transport_fn": 3}, "transport_fn must be"),
    ],
)
def test_bad_settings_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Transport(**kwargs)


def test_block_getters_reject_the_other_mode_and_bad_blocks():
    with pytest.raises(ValueError, match="no fixed tau"):
        Transport(uzawa_step=1.0).block_tau(0, 2)
    with pytest.raises(ValueError, match="fixed tau"):
        Transport(tau=1.0).initial_multiplier(0, 2)
    with pytest.raises(ValueError, match="block=2 is not a block"):
        Transport(tau=1.0).for_block(2, 2)


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
