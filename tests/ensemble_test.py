"""Tests of localgrad.ensemble: the last heads' mean log-probabilities."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import localgrad
from localgrad import ensemble


def _log_softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _hand_accuracy(head_logits, labels, num_heads, weights=None):
    scores = np.mean([_log_softmax(h) for h in head_logits[-num_heads:]], 0)
    hits = (scores.argmax(-1) == labels).astype(np.float64)
    weights = np.ones_like(hits) if weights is None else weights
    return float((hits * weights).sum() / weights.sum())


@pytest.mark.parametrize("num_heads", [1, 2, 3])
def test_ensemble_log_probs_is_the_mean_of_the_last_heads(num_heads):
    rng = np.random.default_rng(0)
    logits = [rng.normal(size=(6, 5)).astype("float32") for _ in range(3)]
    got = ensemble.ensemble_log_probs(logits, num_heads).numpy()
    expected = np.mean([_log_softmax(h) for h in logits[-num_heads:]], 0)
    np.testing.assert_allclose(got, expected, atol=1e-6)


@pytest.mark.parametrize("num_heads", [0, 4, -1, 2.0, True, None])
def test_bad_num_heads_is_a_clear_error(num_heads):
    logits = [tf.zeros((2, 3))] * 3
    with pytest.raises(ValueError, match=r"num_heads=.*Use an int in 1\.\.3"):
        ensemble.ensemble_log_probs(logits, num_heads)


@pytest.fixture(scope="module")
def trained_on_digits():
    """A 4-block MLP trained for two epochs on scikit-learn's digits."""
    keras.utils.set_random_seed(0)
    x_train, y_train = localgrad.data.load_arrays("digits", "train")
    x_test, y_test = localgrad.data.load_arrays("digits", "test")
    network = localgrad.models.build("mlp", x_train.shape[1:], 10, width=0.0625)
    model = localgrad.GreedyModel(network, num_blocks=4, heads="linear")
    model.compile(
        optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x_train, y_train, batch_size=64, epochs=2, verbose=0)
    return model, x_test, y_test


@pytest.mark.parametrize("num_heads", [1, 2, 3, 4])
def test_ensemble_accuracy_on_digits_matches_a_hand_computation(
    trained_on_digits, num_heads
):
    model, x, y = trained_on_digits
    heads = [h.numpy() for h in model.head_outputs(x, training=False)]
    result = model.evaluate_ensemble(x, y, num_heads=num_heads, batch_size=50)
    assert result["num_heads"] == num_heads
    assert result["accuracy"] == pytest.approx(
        _hand_accuracy(heads, y, num_heads), abs=1e-9
    )
    assert result["accuracy"] > 0.5  # Trained: far above chance (0.1).


def test_one_head_is_the_networks_own_accuracy(trained_on_digits):
    model, x, y = trained_on_digits
    logs = model.evaluate(x, y, batch_size=64, verbose=0, return_dict=True)
    result = model.evaluate_ensemble(x, y, num_heads=1)
    assert result["accuracy"] == pytest.approx(logs["accuracy"], abs=1e-6)


def test_datasets_one_hot_labels_and_sample_weights(trained_on_digits):
    model, x, y = trained_on_digits
    heads = [h.numpy() for h in model.head_outputs(x, training=False)]
    from_arrays = ensemble.evaluate_ensemble(model, x, y, 3)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(37)
    from_dataset = ensemble.evaluate_ensemble(model, dataset, num_heads=3)
    assert from_dataset == pytest.approx(from_arrays)
    one_hot = np.eye(10, dtype="float32")[y]
    assert ensemble.evaluate_ensemble(model, x, one_hot, 3) == (
        pytest.approx(from_arrays)
    )
    weights = np.random.default_rng(0).uniform(size=len(y))
    weighted = tf.data.Dataset.from_tensor_slices((x, y, weights)).batch(64)
    assert ensemble.evaluate_ensemble(model, weighted, num_heads=3)[
        "accuracy"
    ] == pytest.approx(_hand_accuracy(heads, y, 3, weights), abs=1e-9)


def test_bad_inputs_are_clear_errors(trained_on_digits):
    model, x, y = trained_on_digits
    with pytest.raises(ValueError, match="num_heads=5: a model with 4"):
        model.evaluate_ensemble(x, y, num_heads=5)
    with pytest.raises(ValueError, match="needs the labels y"):
        model.evaluate_ensemble(x)
    with pytest.raises(ValueError, match="has 10 labels"):
        model.evaluate_ensemble(x, y[:10])
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    with pytest.raises(ValueError, match="Give y only with array inputs"):
        model.evaluate_ensemble(dataset, y)
    with pytest.raises(ValueError, match="needs labels"):
        model.evaluate_ensemble(tf.data.Dataset.from_tensor_slices(x).batch(8))
    with pytest.raises(ValueError, match="got no examples"):
        model.evaluate_ensemble(x[:0], y[:0])
