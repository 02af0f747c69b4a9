"""A SavedModel of an AssociatedModel's effective parameters.

Associated Learning predicts with h_1(…h_K(b_K(s_K))): the *effective*
parameters are the units f_1..f_K, the last bridge b_K and the decoders
h_1..h_K; the encoders g_i, the other bridges and the network's own
classifier are *affiliated* (training only) and are not exported. Every
endpoint takes `images` and returns `logits` (the class scores in
(0, 1)), `probabilities` (the scores normalized to sum to one) and
`predicted_class`.

Endpoints:

- `serve` (`serving_default`): h_1(…h_K(b_K(s_K))); exactly the
  effective parameters.
- `serve_exit_k` (with `early_exits`): the shortcut at depth k,
  f_1..f_k, b_k, h_k..h_1; adds b_k only.
- `serve_adaptive` (with `adaptive_threshold`): each example exits at the
  first depth whose largest probability reaches the threshold (else at
  the last); also returns `exit_block`. Deeper blocks run only while some
  example of the batch has not exited. Adds every non-last bridge.
"""

import tensorflow as tf

from localgrad.associated import AssociatedModel
from localgrad.associated.components import decode
from localgrad.errors import UserError
from localgrad.export.endpoints import EXIT_PREFIX, SERVE, EndpointModule

ADAPTIVE = "serve_adaptive"


class AssociatedInferenceModule(EndpointModule):
    """The `tf.Module` `localgrad.export.save` writes for an AL model.

    It tracks `effective_variables` (what `serve` reads) and
    `bridge_variables` (`"bridge_k"` -> the weights of bridge k that an
    early exit or the adaptive endpoint reads); nothing else is saved.

    Example:

    ```python
    module = AssociatedInferenceModule(model, early_exits=[0],
                                       adaptive_threshold=0.9)
    module.serve_adaptive(images)["exit_block"]
    ```

    Args:
        model: A trained `localgrad.AssociatedModel`.
        early_exits: Sorted block indices in 0..K-2 of the exits.
        adaptive_threshold: None, or the probability in (0, 1] at which
            `serve_adaptive` lets an example exit.

    Raises:
        ValueError: for a threshold outside (0, 1].
    """

    def __init__(
        self,
        model: AssociatedModel,
        early_exits=(),
        adaptive_threshold: float | None = None,
    ):
        if adaptive_threshold is not None and not (
            0.0 < float(adaptive_threshold) <= 1.0
        ):
            raise UserError(
                f"adaptive_threshold={adaptive_threshold!r} must be a "
                "probability in (0, 1]: an example exits at the first depth "
                "whose largest probability reaches it."
            )
        network = model.network
        super().__init__(
            network.example_shape, name="localgrad_associated_export"
        )
        ends = [end for _, end in model.block_ranges]
        bridges, decoders = list(model.bridges), list(model.decoders)
        last = model.num_blocks - 1

        def scores_at(depth, features):
            codes = bridges[depth](features, training=False)
            return decode(decoders[: depth + 1], codes)

        def serve(images):
            features = network.call_units(images, 0, ends[last], False)
            return _outputs(scores_at(last, features))

        def serve_exit(depth):
            def serve_exit_k(images):
                features = network.call_units(images, 0, ends[depth], False)
                return _outputs(scores_at(depth, features))

            return serve_exit_k

        def serve_adaptive(images):
            return _adaptive(
                images,
                network,
                model.block_ranges,
                scores_at,
                float(adaptive_threshold),
            )

        self.add_endpoint(SERVE, serve)
        used_bridges = set(early_exits)
        for depth in early_exits:
            self.add_endpoint(f"{EXIT_PREFIX}{depth}", serve_exit(depth))
        if adaptive_threshold is not None:
            self.add_endpoint(ADAPTIVE, serve_adaptive)
            used_bridges.update(range(last))
        self.effective_variables = list(
            self.serve.get_concrete_function().variables
        )
        self.bridge_variables = {
            f"bridge_{k}": list(bridges[k].weights)
            for k in sorted(used_bridges)
        }


def _adaptive(images, network, block_ranges, scores_at, threshold):
    """Exits each example at its first confident depth.

    Block k + 1 runs (under a `tf.cond`) only while some example of the
    batch has not exited.
    """
    last = len(block_ranges) - 1

    def from_depth(depth, features, chosen, exit_block):
        start, end = block_ranges[depth]
        features = network.call_units(features, start, end, False)
        scores = scores_at(depth, features)
        waiting = exit_block < 0
        confident = tf.reduce_max(_normalized(scores), axis=-1) >= threshold
        leaving = waiting & (confident | (depth == last))
        chosen = tf.where(leaving[:, None], scores, chosen)
        exit_block = tf.where(leaving, tf.constant(depth, tf.int64), exit_block)
        if depth == last:
            return chosen, exit_block
        return tf.cond(
            tf.reduce_any(exit_block < 0),
            lambda: from_depth(depth + 1, features, chosen, exit_block),
            lambda: (chosen, exit_block),
        )

    batch = tf.shape(images)[0]
    classes = network.num_classes
    chosen, exit_block = from_depth(
        0,
        images,
        tf.zeros((batch, classes), tf.float32),
        tf.fill([batch], tf.constant(-1, tf.int64)),
    )
    outputs = _outputs(chosen)
    outputs["exit_block"] = exit_block
    return outputs


def _normalized(scores):
    scores = tf.cast(scores, tf.float32)
    return scores / (tf.reduce_sum(scores, axis=-1, keepdims=True) + 1e-12)


def _outputs(scores):
    scores = tf.cast(scores, tf.float32)
    return {
        "logits": scores,
        "probabilities": _normalized(scores),
        "predicted_class": tf.argmax(scores, axis=-1, output_type=tf.int64),
    }
