"""Recomputing an inner step in the backward pass instead of keeping it.

Under a `tf.GradientTape`, a call of a compiled step keeps every tensor
its backward pass needs until the tape's gradient is taken. For the
meta-gradient those are, per unrolled inner step, the supernet's
activations and the first-order backward pass through them: T steps'
worth of them at once, growing with T and the batch size.
`rematerialized(step)` keeps only each call's inputs and outputs; the
backward pass runs the step again under a tape of its own and
differentiates that: one step's tensors at a time instead of T steps',
for about one more step's computation per step.
"""

import tensorflow as tf


def rematerialized(step):
    """`step(differentiable, constants)` recomputed in the backward pass.

    Example:

    ```python
    inner = rematerialized(
        lambda d, c: steps.inner_step(d[0], c[0], d[1], d[2], d[3], *c[1:]))
    trainable, velocities = inner(
        (trainable, velocities, alpha, beta), (non_trainable, x, y, rate))
    ```

    Args:
        step: A function of two nested structures of tensors: the
            differentiable inputs, and constants no gradient is taken for.

    Returns:
        A function with the same arguments and outputs as `step`; an outer
        tape sees one operation from the differentiable inputs' flattened
        tensors to the outputs, whose gradient recomputes `step`.
    """

    def call(differentiable, constants):
        flat_inputs = tf.nest.flatten(differentiable)

        @tf.custom_gradient
        def forward(*flat):
            # Detached inputs: no tape records the step, so none keeps its
            # intermediate tensors.
            detached = [tf.stop_gradient(tensor) for tensor in flat]
            outputs = step(
                tf.nest.pack_sequence_as(differentiable, detached), constants
            )

            def backward(*output_gradients):
                with tf.GradientTape() as tape:
                    tape.watch(flat)
                    again = tf.nest.flatten(
                        step(
                            tf.nest.pack_sequence_as(differentiable, flat),
                            constants,
                        )
                    )
                output_gradients = [
                    tf.zeros_like(output) if gradient is None else gradient
                    for output, gradient in zip(again, output_gradients)
                ]
                return tape.gradient(
                    again,
                    list(flat),
                    output_gradients=output_gradients,
                    unconnected_gradients=tf.UnconnectedGradients.ZERO,
                )

            return outputs, backward

        return forward(*flat_inputs)

    return call
