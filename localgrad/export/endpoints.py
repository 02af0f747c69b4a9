"""EndpointModule: a `tf.Module` of named endpoints over a batch of images.

Both exported modules (`InferenceModule` for a greedy model,
`AssociatedInferenceModule` for an AssociatedModel) are one of these: each
endpoint is a `tf.function` of one float32 `images` batch of any size,
saved as a signature of the same name (`serve` as `serving_default`).
"""

from collections.abc import Callable, Sequence

import tensorflow as tf

INPUT_NAME = "images"
SERVE = "serve"
EXIT_PREFIX = "serve_exit_"


class EndpointModule(tf.Module):
    """A `tf.Module` whose endpoints each take one batch of images.

    A subclass adds its endpoints with `add_endpoint`, `serve` first, and
    tracks the variables they read as attributes of its own: a SavedModel
    holds only what the module tracks, and the layers are not tracked.

    Example:

    ```python
    module = EndpointModule(example_shape=(28, 28, 1), name="export")
    module.add_endpoint(SERVE, lambda images: {"logits": net(images)})
    tf.saved_model.save(module, path, signatures=module.signatures())
    ```

    Args:
        example_shape: The shape of one input example (without the batch).
        name: The module's name.
    """

    def __init__(self, example_shape: Sequence[int], name: str):
        super().__init__(name=name)
        self._example_shape = tuple(example_shape)
        self._endpoint_names = []

    def add_endpoint(self, name: str, function: Callable) -> None:
        """Adds `function(images)` as the endpoint (and signature) `name`.

        Args:
            name: The endpoint's name (`serve` for the default signature).
            function: Maps a float32 `(batch,) + example_shape` tensor to
                a dict of output tensors.
        """
        spec = tf.TensorSpec(
            (None,) + self._example_shape, tf.float32, INPUT_NAME
        )
        traced = tf.function(function, input_signature=[spec], autograph=False)
        setattr(self, name, traced)
        self._endpoint_names.append(name)

    @property
    def endpoint_names(self) -> tuple:
        """The endpoints, in the order they were added (`serve` first)."""
        return tuple(self._endpoint_names)

    def signatures(self) -> dict:
        """The concrete functions to save as signatures, by name."""
        return {
            ("serving_default" if name == SERVE else name): getattr(
                self, name
            ).get_concrete_function()
            for name in self._endpoint_names
        }
