"""Tests of the relaxed supernet."""

import keras
import numpy as np
import pytest

import localgrad
from localgrad.search import RelaxedSupernet


@pytest.fixture(scope="module")
def network():
    keras.utils.set_random_seed(0)
    return localgrad.models.build("mlp", (6,), 4, width=0.01)


def test_local_logits_mix_the_candidate_heads_by_beta(network):
    supernet = RelaxedSupernet(network, heads=("linear", "mlp"))
    x = np.random.default_rng(0).normal(size=(5, 6)).astype("float32")
    alpha_probs = keras.ops.softmax(keras.ops.zeros((3, 2)))
    beta_probs = np.array([[0.2, 0.8], [0.5, 0.5], [1.0, 0.0]], "float32")
    logits, local = supernet(x, alpha_probs, beta_probs, training=False)
    np.testing.assert_allclose(logits, network(x), rtol=1e-5, atol=1e-6)
    assert len(local) == network.num_units - 1
    features = x
    for index, unit in enumerate(network.units[:-1]):
        features = unit(features, training=False)
        heads = supernet.candidate_heads[index]
        want = sum(
            beta_probs[index, m] * np.asarray(h(features, training=False))
            for m, h in enumerate(heads)
        )
        np.testing.assert_allclose(local[index], want, rtol=1e-5, atol=1e-6)


def test_supernet_round_trips_through_its_config(network):
    supernet = RelaxedSupernet(network, heads=("linear", "mlp"), head_width=0.5)
    clone = RelaxedSupernet.from_config(supernet.get_config())
    assert clone.head_names == ["linear", "mlp"]
    assert clone.num_units == network.num_units
    assert [w.shape for w in clone.weights] == [
        w.shape for w in supernet.weights
    ]


def test_heads_that_cannot_follow_a_unit_are_refused(network):
    with pytest.raises(ValueError, match="Candidate head 'light1'.*unit 1"):
        RelaxedSupernet(network, heads=("light1",))
    with pytest.raises(ValueError, match="distinct"):
        RelaxedSupernet(network, heads=("linear", "linear"))
    single = localgrad.Network(
        network.units[:1], network.classifier, (6,), architecture="one"
    )
    with pytest.raises(ValueError, match="at least 2 units"):
        RelaxedSupernet(single, heads=("linear",))
