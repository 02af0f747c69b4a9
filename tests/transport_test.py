import math

import keras
import pytest

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
    with pytest.raises(ValueError, match=r"block 0 \(units 0..3\)"):
        transport.for_blocks(net, [(0, 4), (4, 8)])
    custom = Transport(tau=1.0, transport_fn=lambda inputs, outputs: 0.0)
    assert custom.check_blocks(net, [(0, 4), (4, 8)]) == ["custom", "custom"]
    blocks = Transport(uzawa_step=1.0).for_blocks(
        _residual_network(), [(0, 4), (4, 8)]
    )
    assert [float(b.multiplier.value) for b in blocks] == [1.0, 2.0]


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
