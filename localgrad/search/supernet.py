"""The relaxed supernet SEDONA searches over (methods.md §3)."""

from collections.abc import Sequence

import keras
from keras import ops

from localgrad import heads as heads_lib
from localgrad.errors import UserError
from localgrad.network import Network, config_with_network
from localgrad.search.gates import gate

DEFAULT_HEADS = ("light1", "light2", "light3", "light4")


@keras.saving.register_keras_serializable(package="localgrad")
class RelaxedSupernet(keras.layers.Layer):
    """A network whose every non-last unit carries M candidate heads.

    `call` is the relaxed forward pass of the search (not an inference
    path): unit l's features go to its M heads, whose logits are mixed by
    `beta_probs[l]`, and to the next unit through the gradient gate of
    weight `alpha_probs[l, 1]`. Evaluate it on substituted weights with
    `stateless_call`, as the unrolled inner loop does.

    Example:

    ```python
    net = localgrad.models.build("vgg11", (32, 32, 3), 10, width=0.25)
    supernet = RelaxedSupernet(net, heads=("light1", "light2"))
    alpha_probs = keras.ops.softmax(keras.ops.zeros((7, 2)))
    beta_probs = keras.ops.softmax(keras.ops.zeros((7, 2)))
    logits, local_logits = supernet(x, alpha_probs, beta_probs,
                                    training=True)
    len(local_logits)  # 7: one mix per non-last unit
    ```

    Args:
        network: The `localgrad.Network` to search a decoupling for.
        heads: The M candidate head names (see `localgrad.heads`).
        head_width: `width_mult` of the candidate heads.
        **kwargs: Passed to `keras.layers.Layer`.

    Raises:
        ValueError: for a network of one unit, no or repeated head names,
            or a head that cannot take a unit's output.
    """

    def __init__(
        self,
        network: Network,
        heads: Sequence[str] = DEFAULT_HEADS,
        head_width: float = 1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        heads = list(heads) if not isinstance(heads, str) else [heads]
        if network.num_units < 2:
            raise UserError(
                "A decoupling search needs a network of at least 2 units "
                f"(a boundary falls between units); {network.architecture!r} "
                f"has {network.num_units}."
            )
        if not heads or len(set(heads)) != len(heads):
            raise UserError(
                f"heads={heads} must be a non-empty list of distinct head "
                "names, e.g. ['light1', 'light2', 'light3', 'light4']."
            )
        self.network = network
        self.head_names = heads
        self.head_width = float(head_width)
        self.candidate_heads = []
        for index, shape in enumerate(network.unit_output_shapes[:-1]):
            unit_heads = []
            for name in heads:
                try:
                    head = heads_lib.build(
                        name,
                        shape,
                        network.num_classes,
                        width_mult=head_width,
                        light_reduction=network.light_head_reduction,
                        layer_name=f"unit_{index:02d}_{name}",
                    )
                except ValueError as error:
                    raise UserError(
                        f"Candidate head {name!r} cannot follow unit "
                        f"{index + 1} ({network.unit_names[index]}, output "
                        f"shape {shape}): {error} Choose candidate heads "
                        "that take every non-last unit's output."
                    ) from error
                unit_heads.append(head)
            self.candidate_heads.append(unit_heads)
        self.built = True

    @property
    def num_units(self) -> int:
        """The network's number of units L."""
        return self.network.num_units

    @property
    def num_candidates(self) -> int:
        """The number of candidate heads M."""
        return len(self.head_names)

    def call(self, inputs, alpha_probs, beta_probs, training=None, detach=None):
        """The relaxed forward pass.

        Args:
            inputs: A batch of examples.
            alpha_probs: `softmax(alpha)`, `(L - 1, 2)`; column 1 weighs the
                back-propagated signal (the gate), column 0 the local loss
                (used by `relaxed_loss`).
            beta_probs: `softmax(beta)`, `(L - 1, M)`, mixing the heads.
            training: Training mode of the layers (batch statistics).
            detach: The gates' stop-gradient (see `gate`); None for
                `stop_gradient`.

        Returns:
            `(logits, local_logits)`: the classifier's logits and a list of
            L - 1 mixed head logits, `sum_m beta_probs[l, m] * D_m(h_l)`.
        """
        features = inputs
        local_logits = []
        last = self.network.num_units - 1
        for index, unit in enumerate(self.network.units):
            features = unit(features, training=training)
            if index == last:
                break
            mixed = 0.0
            for m, head in enumerate(self.candidate_heads[index]):
                head_logits = head(features, training=training)
                weight = ops.cast(beta_probs[index, m], head_logits.dtype)
                mixed = mixed + weight * head_logits
            local_logits.append(mixed)
            features = gate(features, alpha_probs[index, 1], detach)
        logits = self.network.classifier(features, training=training)
        return logits, local_logits

    def get_config(self):
        config = super().get_config()
        config.update(
            network=keras.saving.serialize_keras_object(self.network),
            heads=list(self.head_names),
            head_width=self.head_width,
        )
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config_with_network(config))
