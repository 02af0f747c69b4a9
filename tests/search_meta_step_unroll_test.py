"""The meta-gradient at T = 5 against a reference unrolled in one tape.

The reference is how localgrad computed the meta-gradient before the inner
step became one compiled function called T times: every inner step (an
inner tape, momentum SGD with weight decay, BatchNorm statistics frozen)
unrolled under a single outer tape. It is written here from the library's
building blocks (the supernet's `stateless_call`, the gates, the relaxed
loss, the SGD step) and runs eagerly; `MetaStep` runs as a graph. The
rematerialized inner steps (recomputed in the backward pass) must give
the kept steps' meta-gradient.
"""

import numpy as np
import tensorflow as tf
from keras import ops
from search_meta_step_test import _problem

from localgrad.search import (
    MetaStep,
    fused_batch_norm,
    smoothed_cross_entropy,
)
from localgrad.search.exact_moments import exact_batch_moments
from localgrad.search.gates import relaxed_loss, tape_detach
from localgrad.search.sgd import sgd_momentum_step

MOMENTUM, WEIGHT_DECAY, SMOOTHING = 0.9, 1e-4, 0.1


def _positions(variables, all_variables):
    index = {id(v): i for i, v in enumerate(all_variables)}
    return [index[id(v)] for v in variables]


def _reference_meta_gradient(supernet, state, alpha, beta, data):
    """The validation objective's gradient through one unrolled tape."""
    network = supernet.network
    network_trainable = _positions(
        network.trainable_variables, supernet.trainable_variables
    )
    network_non_trainable = _positions(
        network.non_trainable_variables, supernet.non_trainable_variables
    )
    with exact_batch_moments(), tf.GradientTape() as outer:
        outer.watch([alpha, beta])
        alpha_probs = ops.softmax(alpha, axis=-1)
        beta_probs = ops.softmax(beta, axis=-1)
        trainable, velocities = list(state.trainable), state.velocities
        for step in range(len(data["train_x"])):
            with tf.GradientTape() as inner:
                inner.watch(trainable)
                (logits, local), _ = supernet.stateless_call(
                    trainable,
                    list(state.non_trainable),
                    data["train_x"][step],
                    alpha_probs,
                    beta_probs,
                    training=True,
                    detach=tape_detach(inner),
                )
                loss = relaxed_loss(
                    logits, local, alpha_probs, data["train_y"][step], SMOOTHING
                )
            gradients = inner.gradient(loss, trainable)
            trainable, velocities = sgd_momentum_step(
                trainable,
                velocities,
                [
                    ops.zeros_like(w) if g is None else g
                    for w, g in zip(trainable, gradients)
                ],
                data["learning_rate"],
                MOMENTUM,
                WEIGHT_DECAY,
            )
        logits, _ = network.stateless_call(
            [trainable[i] for i in network_trainable],
            [state.non_trainable[i] for i in network_non_trainable],
            data["valid_x"],
            training=False,
        )
        value = smoothed_cross_entropy(logits, data["valid_y"], SMOOTHING)
    return (value, *outer.gradient(value, [alpha, beta]))


def test_meta_gradient_at_five_steps_equals_the_unrolled_reference():
    supernet, state, alpha, beta, data = _problem("float64", 5)
    steps = MetaStep(
        supernet,
        momentum=MOMENTUM,
        weight_decay=WEIGHT_DECAY,
        label_smoothing=SMOOTHING,
        jit_compile=False,
    )
    got = steps.meta_gradient(state, alpha, beta, **data)
    want = _reference_meta_gradient(supernet, state, alpha, beta, data)
    assert np.abs(want[1]).max() > 1e-4  # Not vacuous.
    assert np.abs(want[2]).max() > 1e-5
    for mine, reference in zip(got, want):
        np.testing.assert_allclose(mine, reference, rtol=1e-9, atol=1e-12)
    # One trace of each compiled function serves all five inner steps.
    assert steps.inner_step.experimental_get_tracing_count() == 1


def test_rematerialized_steps_give_the_same_meta_gradient():
    supernet, state, alpha, beta, data = _problem("float64", 3)
    kept, recomputed = (
        MetaStep(
            supernet,
            label_smoothing=SMOOTHING,
            jit_compile=False,
            rematerialize=rematerialize,
        ).meta_gradient(state, alpha, beta, **data)
        for rematerialize in (False, True)
    )
    assert np.abs(kept[1]).max() > 1e-4  # Not vacuous.
    for mine, reference in zip(recomputed, kept):
        np.testing.assert_allclose(mine, reference, rtol=1e-12, atol=1e-15)


def _as_float64(structure):
    def cast(value):
        value = tf.convert_to_tensor(value)
        return tf.cast(value, tf.float64) if value.dtype.is_floating else value

    return tf.nest.map_structure(cast, structure)


def test_fused_batch_norm_is_as_close_to_float64_as_keras_batch_norm(
    monkeypatch,
):
    # The fused kernel runs in float32 only: both float32 meta-gradients
    # are compared with Keras' BatchNormalization in float64, from the
    # same (float32) starting point.
    supernet, state, alpha, beta, data = _problem("float32", 1)
    supernet64 = _problem("float64", 1)[0]
    exact = MetaStep(
        supernet64, jit_compile=None, fused_batch_norm=False
    ).meta_gradient(*_as_float64((state, alpha, beta)), **_as_float64(data))
    fused_layers, kernel_call = [], fused_batch_norm.fused_call

    def fused_call(layer, inputs):
        fused_layers.append(layer)
        return kernel_call(layer, inputs)

    monkeypatch.setattr(fused_batch_norm, "fused_call", fused_call)
    errors = {}
    for fused in (False, True):
        steps = MetaStep(supernet, jit_compile=None, fused_batch_norm=fused)
        got = steps.meta_gradient(state, alpha, beta, **data)
        errors[fused] = [
            np.max(np.abs(np.float64(mine) - reference))
            for mine, reference in zip(got, exact)
        ]
    # Every BatchNormalization of the supernet went through the kernel.
    batch_norms = [
        v for v in supernet.non_trainable_variables if v.name == "moving_mean"
    ]
    assert len(batch_norms) == 9  # 3 units', 3 in each of 2 light1 heads.
    assert len({id(layer) for layer in fused_layers}) == len(batch_norms)
    assert np.abs(exact[1]).max() > 1e-4  # Not vacuous.
    for fused, keras_error, reference in zip(
        errors[True], errors[False], exact
    ):
        assert fused <= 3 * keras_error + 1e-6 * np.abs(reference).max()
