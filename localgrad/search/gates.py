"""SEDONA's gradient gates and the relaxed supernet's total loss.

A non-last unit l hands the next unit the gated features

    h~_l = sg(h_l) + a_l1 * (h_l - sg(h_l))

whose forward value is h_l, and the total loss is L_F + sum_l a_l0 * L_l.
The signal reaching h_l is then exactly

    delta_l = a_l0 * grad L_l + a_l1 * J_{l+1}^T delta_{l+1},

a mix of the local loss' gradient and the back-propagated one, with no
division, and everything stays differentiable in (alpha, beta) for an outer
tape (methods.md §3).
"""

from collections.abc import Sequence

from keras import ops


def gate(features, backprop_weight, detach=None):
    """Scales the gradient that flows back through `features`.

    The forward value is `features` unchanged; the gradient reaching
    `features` from what follows is multiplied by `backprop_weight`.

    Under nested tapes, `tf.stop_gradient` would hide `h`'s value from the
    outer tape as well, which then sees `d h~ / d h = a_l1` where the
    value really moves one for one with `h`: the second-order terms of a
    meta-gradient come out wrong. Pass `detach` that detaches for the inner
    tape only (`MetaStep` copies `h` while that tape is paused, see
    `tape_detach`), and the outer tape sees `h~ = h` exactly.

    Example:

    ```python
    with tf.GradientTape() as tape:
        tape.watch(h)
        y = tf.reduce_sum(gate(h, 0.25))
    tape.gradient(y, h)  # 0.25 everywhere
    ```

    Args:
        features: The unit's output h_l.
        backprop_weight: a_l1, a scalar tensor.
        detach: The function playing `sg`; `stop_gradient` by default.

    Returns:
        `sg(h) + a_l1 * (h - sg(h))`.
    """
    detached = (detach or ops.stop_gradient)(features)
    weight = ops.cast(backprop_weight, features.dtype)
    return detached + weight * (features - detached)


def tape_detach(tape):
    """A `detach` function that hides a tensor from `tape` only.

    The copy is made while `tape` is paused, so `tape` sees a constant and
    every other (outer) tape sees the identity.

    Example:

    ```python
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            h_tilde = gate(h, a1, detach=tape_detach(inner))
    ```
    """

    def detach(features):
        with tape.stop_recording():
            return ops.copy(features)

    return detach


def smoothed_cross_entropy(logits, labels, label_smoothing: float = 0.0):
    """Softmax cross-entropy with label smoothing, averaged over the batch.

    Computed in the logits' dtype (float32 at least), so that float64
    networks give float64 losses (finite-difference tests need them).

    Example:

    ```python
    smoothed_cross_entropy(logits, [0, 3, 1], label_smoothing=0.1)
    ```

    Args:
        logits: `(B, n)` logits.
        labels: `(B,)` integer class labels.
        label_smoothing: ε: the target is `(1 - ε) * one_hot + ε / n`.

    Returns:
        A scalar.
    """
    dtype = logits.dtype
    if dtype not in ("float32", "float64"):
        dtype = "float32"
        logits = ops.cast(logits, dtype)
    num_classes = logits.shape[-1]
    targets = ops.one_hot(
        ops.reshape(ops.cast(labels, "int32"), (-1,)), num_classes, dtype=dtype
    )
    if label_smoothing:
        targets = targets * (1.0 - label_smoothing) + (
            label_smoothing / num_classes
        )
    log_probs = ops.log_softmax(logits, axis=-1)
    return -ops.mean(ops.sum(targets * log_probs, axis=-1))


def relaxed_loss(
    logits,
    local_logits: Sequence,
    alpha_probs,
    labels,
    label_smoothing: float = 0.0,
):
    """The relaxed supernet's total loss `L_F + sum_l a_l0 * L_l`.

    Example:

    ```python
    logits, local = supernet(x, alpha_probs, beta_probs, training=True)
    loss = relaxed_loss(logits, local, alpha_probs, y, label_smoothing=0.1)
    ```

    Args:
        logits: The network classifier's `(B, n)` logits (loss L_F).
        local_logits: For every non-last unit l, the mixed logits of its
            candidate heads (loss L_l).
        alpha_probs: `softmax(alpha)`, shape `(L - 1, 2)`; column 0 is the
            local-signal weight a_l0.
        labels: `(B,)` integer labels.
        label_smoothing: ε of every cross-entropy.

    Returns:
        The scalar total loss.
    """
    total = smoothed_cross_entropy(logits, labels, label_smoothing)
    for index, unit_logits in enumerate(local_logits):
        local = smoothed_cross_entropy(unit_logits, labels, label_smoothing)
        total = total + ops.cast(alpha_probs[index, 0], local.dtype) * local
    return total
