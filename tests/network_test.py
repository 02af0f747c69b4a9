import keras
import numpy as np
import pytest

import localgrad
from localgrad.network import config_with_network


def _network():
    units = [keras.layers.Dense(5, activation="relu") for _ in range(2)]
    return localgrad.Network(units, keras.layers.Dense(3), input_shape=(4,))


def test_config_with_network_gives_the_network_back_and_keeps_the_rest():
    network = _network()
    x = np.random.default_rng(0).normal(size=(2, 4)).astype("float32")
    expected = network(x).numpy()
    config = {
        "network": keras.saving.serialize_keras_object(network),
        "boundaries": [1],
    }
    restored = config_with_network(config)
    assert isinstance(restored["network"], localgrad.Network)
    assert restored["network"] is not network
    assert restored["network"].num_units == 2
    assert restored["boundaries"] == [1]
    assert isinstance(config["network"], dict)  # the given config unchanged
    # Weights are not in the config: the copy computes a different function
    # until weights are loaded; its shapes are the network's.
    restored["network"].set_weights(network.get_weights())
    np.testing.assert_allclose(restored["network"](x).numpy(), expected)


@pytest.mark.parametrize("reduction", [0, 2.0, True, "4"])
def test_a_bad_light_head_reduction_is_named(reduction):
    units = [keras.layers.Dense(5)]
    with pytest.raises(ValueError, match="light_head_reduction must be an"):
        localgrad.Network(
            units,
            keras.layers.Dense(3),
            input_shape=(4,),
            light_head_reduction=reduction,
        )
