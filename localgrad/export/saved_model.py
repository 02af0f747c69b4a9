"""A SavedModel of a greedy model's effective parameters and endpoints.

The exported `tf.Module` holds no Keras model, no optimizer, no auxiliary
head that no endpoint uses: only the variables its endpoints read. Every
endpoint takes `images` (a float32 batch of any size) and returns a dict:

- `logits`: float32 `(batch, classes)` scores (for the ensemble, the mean
  log-probabilities of its heads);
- `probabilities`: their softmax;
- `predicted_class`: int64 `(batch,)`, their argmax.

Endpoints:

- `serve` (signature `serving_default`): the network, units and its own
  classifier. Holds exactly the network's weights.
- `serve_ensemble` (with `ensemble=n`): SEDONA's test-time ensemble of the
  last n heads (the classifier and the heads of the n - 1 blocks before
  the last); adds those heads' weights.
- `serve_exit_k` (with `early_exits`): an early exit after block k
  (k in 0..K-2), the units of blocks 0..k then head k; adds that head.

An `AssociatedModel` exports its own endpoints (the effective parameters,
shortcut exits, an adaptive endpoint): see `localgrad.export.associated`.
"""

import dataclasses
import os
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from localgrad.associated import AssociatedModel
from localgrad.ensemble import check_num_heads, ensemble_log_probs
from localgrad.errors import UserError
from localgrad.export import sizes
from localgrad.export.associated import AssociatedInferenceModule
from localgrad.export.endpoints import EXIT_PREFIX, SERVE, EndpointModule
from localgrad.export.tflite import TFLITE_FILENAME, convert_to_tflite
from localgrad.greedy_model import GreedyModel
from localgrad.network import Network

ENSEMBLE = "serve_ensemble"


@dataclasses.dataclass(frozen=True)
class ExportSummary:
    """What `save` wrote.

    Attributes:
        path: The SavedModel directory.
        endpoints: The endpoint names (`serve`, `serve_ensemble`,
            `serve_exit_k`); each is also a signature (`serve` as
            `serving_default`).
        exported: The variables the SavedModel holds.
        size_bytes: The SavedModel's size on disk (without `model.tflite`).
        tflite_path: The TFLite file, or None.
        tflite_bytes: Its size, or 0.
    """

    path: str
    endpoints: tuple
    exported: sizes.ParameterCount
    size_bytes: int
    tflite_path: str | None = None
    tflite_bytes: int = 0


class InferenceModule(EndpointModule):
    """The `tf.Module` that `save` writes: endpoints and their variables.

    It tracks `network_variables` (the units and classifier) and
    `head_variables` (a dict `"head_k"` -> the weights of head k that an
    endpoint reads); the layers themselves are only referenced by the
    endpoint functions, so nothing else is saved.

    Example:

    ```python
    module = InferenceModule(model, ensemble=2, early_exits=[0])
    module.serve(images)["predicted_class"]
    tf.saved_model.save(module, path, signatures=module.signatures())
    ```

    Args:
        model: A `localgrad.GreedyModel` (or a `localgrad.Network`: one
            block, no heads).
        ensemble: None, or the number n of last heads that vote in
            `serve_ensemble` (1..K).
        early_exits: False (none), True (after every non-last block), or
            a list of block indices in 0..K-2.

    Raises:
        ValueError: for a bad model, ensemble or early exit.
    """

    def __init__(
        self,
        model: GreedyModel | Network,
        ensemble: int | None = None,
        early_exits: bool | Sequence[int] = False,
    ):
        network, block_ranges, heads = _parts(model)
        super().__init__(network.example_shape, name="localgrad_export")
        num_blocks = len(block_ranges)
        exits = resolve_early_exits(early_exits, num_blocks)
        if ensemble is not None:
            ensemble = check_num_heads(ensemble, num_blocks, "ensemble")

        def serve(images):
            return _outputs(network(images, training=False))

        def serve_ensemble(images):
            logits, features = [], images
            for block, (start, end) in enumerate(block_ranges):
                features = network.call_units(features, start, end, False)
                if block >= num_blocks - ensemble:
                    logits.append(heads[block](features, training=False))
            return _outputs(ensemble_log_probs(logits, ensemble))

        def serve_exit(block):
            def serve_exit_k(images):
                end = block_ranges[block][1]
                features = network.call_units(images, 0, end, False)
                return _outputs(heads[block](features, training=False))

            return serve_exit_k

        self.add_endpoint(SERVE, serve)
        used_heads = set(exits)
        if ensemble is not None:
            self.add_endpoint(ENSEMBLE, serve_ensemble)
            used_heads.update(range(num_blocks - ensemble, num_blocks - 1))
        for block in exits:
            self.add_endpoint(f"{EXIT_PREFIX}{block}", serve_exit(block))

        self.network_variables = _variables_read(self.serve)
        self.head_variables = {
            f"head_{k}": _head_variables_read(
                heads[k], network.unit_output_shapes[block_ranges[k][1] - 1]
            )
            for k in sorted(used_heads)
        }
        self._check_tracked()

    def exported_variables(self) -> list:
        """Every variable the module holds (network first)."""
        flat = list(self.network_variables)
        for variables in self.head_variables.values():
            flat.extend(variables)
        return flat

    def _check_tracked(self):
        tracked = {id(v) for v in self.exported_variables()}
        for name in self._endpoint_names:
            function = getattr(self, name).get_concrete_function()
            missing = [
                v.name for v in function.variables if id(v) not in tracked
            ]
            if missing:
                raise UserError(
                    f"Endpoint {name} reads variables outside the network "
                    f"and its heads: {missing}. Export only models whose "
                    "layers read their own weights."
                )


def resolve_early_exits(early_exits, num_blocks: int) -> list:
    """The sorted block indices of the requested early exits.

    Args:
        early_exits: False/None (none), True (all non-last blocks), or a
            list of block indices in 0..K-2.
        num_blocks: K.

    Returns:
        A sorted list of distinct block indices.

    Raises:
        ValueError: for an index that is not a non-last block.
    """
    if early_exits is None or early_exits is False:
        return []
    if early_exits is True:
        return list(range(num_blocks - 1))
    if isinstance(early_exits, (str, bytes)) or not isinstance(
        early_exits, Sequence
    ):
        raise UserError(
            f"early_exits={early_exits!r} must be True (an exit after "
            "every non-last block), False, or a list of block indices."
        )
    blocks = []
    for block in early_exits:
        if isinstance(block, bool) or not isinstance(block, (int, np.integer)):
            raise UserError(
                f"early_exits holds {block!r}; block indices are ints in "
                f"0..{num_blocks - 2}."
            )
        if block == num_blocks - 1:
            raise UserError(
                f"There is no early exit after block {block}: it is the "
                f"last of the model's {num_blocks} block(s), which ends in "
                "the network's own classifier; that prediction is the "
                f"`serve` endpoint. Ask for exits in 0..{num_blocks - 2}."
            )
        if not 0 <= block < num_blocks - 1:
            raise UserError(
                f"early exit {block} is not a non-last block of a model "
                f"with {num_blocks} block(s); use indices in "
                f"0..{num_blocks - 2} (blocks count from 0)."
            )
        blocks.append(int(block))
    return sorted(set(blocks))


def save(
    model: GreedyModel | Network,
    path: str,
    ensemble: int | None = None,
    early_exits: bool | Sequence[int] = False,
    tflite: bool = False,
    adaptive_threshold: float | None = None,
) -> ExportSummary:
    """Exports a trained greedy model's inference endpoints as a SavedModel.

    Loading needs TensorFlow only, not localgrad:

    ```python
    localgrad.export.save(model, "/tmp/export", ensemble=2, early_exits=True)

    loaded = tf.saved_model.load("/tmp/export")
    loaded.serve(images)["predicted_class"]     # the network's classifier
    loaded.serve_ensemble(images)               # mean of 2 heads' log-probs
    loaded.serve_exit_0(images)                 # exit after block 0
    loaded.signatures["serving_default"](images=images)
    ```

    Args:
        model: A trained `localgrad.GreedyModel` (or a `localgrad.Network`).
        path: The directory to write (created or overwritten).
        ensemble: None for no ensemble endpoint, or n in 1..K: the
            `serve_ensemble` endpoint averages the log-probabilities of
            the last n heads (the network's classifier and the heads of
            the n - 1 blocks before the last).
        early_exits: False for none, True for an exit after every non-last
            block, or a list of block indices in 0..K-2: `serve_exit_k`
            runs blocks 0..k and head k.
        tflite: Also write `path/model.tflite` with the same signatures.
        adaptive_threshold: `AssociatedModel` only: add `serve_adaptive`,
            where each example exits at the first depth whose largest
            probability reaches this threshold.

    An `AssociatedModel` exports `serve` (h_1(…h_K(b_K(s_K))), the
    effective parameters only), `serve_exit_k` (the shortcut at depth k,
    adding bridge k) and `serve_adaptive`; it has no ensemble:

    ```python
    localgrad.export.save(al_model, "/tmp/al", early_exits=True,
                          adaptive_threshold=0.9)
    loaded.serve_adaptive(images)["exit_block"]
    ```

    Returns:
        An `ExportSummary` (endpoints, exported parameters, sizes).

    Raises:
        ValueError: for more ensemble members than heads, an exit after
            the last block (or any index outside 0..K-2), a model that
            is not a GreedyModel or Network, an ensemble of an
            AssociatedModel, or an adaptive threshold for another model.
    """
    module = _inference_module(model, ensemble, early_exits, adaptive_threshold)
    tf.saved_model.save(module, path, signatures=module.signatures())
    tflite_path, tflite_bytes = None, 0
    if tflite:
        tflite_path = convert_to_tflite(
            path, os.path.join(path, TFLITE_FILENAME)
        )
        tflite_bytes = os.path.getsize(tflite_path)
    return ExportSummary(
        path=path,
        endpoints=module.endpoint_names,
        exported=sizes.saved_parameter_count(path),
        size_bytes=sizes.directory_size(path, exclude=[TFLITE_FILENAME]),
        tflite_path=tflite_path,
        tflite_bytes=tflite_bytes,
    )


def _inference_module(model, ensemble, early_exits, adaptive_threshold):
    if isinstance(model, AssociatedModel):
        if ensemble is not None:
            raise UserError(
                "An AssociatedModel has no heads to ensemble; export it "
                "without ensemble= (early_exits= and adaptive_threshold= "
                "give its shortcut predictions)."
            )
        return AssociatedInferenceModule(
            model,
            resolve_early_exits(early_exits, model.num_blocks),
            adaptive_threshold,
        )
    if adaptive_threshold is not None:
        raise UserError(
            "adaptive_threshold= is for an AssociatedModel's shortcut "
            f"predictions; got a {type(model).__name__}."
        )
    return InferenceModule(model, ensemble=ensemble, early_exits=early_exits)


def _parts(model):
    """`(network, block_ranges, heads)`; heads[-1] is the classifier."""
    if isinstance(model, GreedyModel):
        heads = [model.heads[k] for k in range(model.num_blocks - 1)]
        heads.append(model.network.classifier)
        return model.network, list(model.block_ranges), heads
    if isinstance(model, Network):
        return model, [(0, model.num_units)], [model.classifier]
    raise UserError(
        f"localgrad.export needs a localgrad.GreedyModel or "
        f"localgrad.Network; got {type(model).__name__}. Load a trained "
        "model with keras.saving.load_model('model.keras') first."
    )


def _outputs(scores):
    scores = tf.cast(scores, tf.float32)
    return {
        "logits": scores,
        "probabilities": tf.nn.softmax(scores, axis=-1),
        "predicted_class": tf.argmax(scores, axis=-1, output_type=tf.int64),
    }


def _variables_read(function):
    return list(function.get_concrete_function().variables)


def _head_variables_read(head, feature_shape):
    spec = tf.TensorSpec((None,) + tuple(feature_shape), tf.float32)
    read = tf.function(
        lambda features: head(features, training=False), autograph=False
    )
    return list(read.get_concrete_function(spec).variables)
