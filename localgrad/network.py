"""A network as an ordered list of units followed by a classifier."""

from collections.abc import Sequence

import keras

from localgrad.errors import UserError
from localgrad.graph_cuts import find_cut_points, split


@keras.saving.register_keras_serializable(package="localgrad")
class Network(keras.Model):
    """An ordered list of units followed by the network's own classifier.

    A unit is the smallest piece a block boundary can fall after: one
    conv-BN-ReLU in a VGG, one residual block in a ResNet, one Dense layer in
    an MLP. `call` runs the units in order, then the classifier.

    Example:

    ```python
    net = localgrad.Network(
        units=[keras.layers.Dense(64, activation="relu") for _ in range(3)],
        classifier=keras.layers.Dense(10),
        input_shape=(20,),
    )
    logits = net(x)
    net.unit_output_shapes  # [(64,), (64,), (64,)]
    net.num_classes         # 10
    ```

    Args:
        units: The units, in order. Each is a Keras layer (a small
            `keras.Sequential` for a group of layers).
        classifier: The layer that maps the last unit's output to logits.
        input_shape: Shape of one example, without the batch dimension.
        architecture: Name of the architecture (e.g. `"vgg19"`), recorded in
            decoupling files so that a file is only read for its network.
        light_head_reduction: How SEDONA's light heads narrow this
            network's features: their first 1x1 conv has C // reduction
            channels. The authors use 4, and 1 on ResNet-18/34, whose basic
            blocks are already narrow (`localgrad.models` sets it so).

    Raises:
        ValueError: if there are no units, or light_head_reduction is not
            an integer >= 1.
    """

    def __init__(
        self,
        units: Sequence[keras.layers.Layer],
        classifier: keras.layers.Layer,
        input_shape: Sequence[int],
        architecture: str | None = None,
        light_head_reduction: int = 4,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not units:
            raise UserError("A Network needs at least one unit; got none.")
        if isinstance(light_head_reduction, bool) or not (
            isinstance(light_head_reduction, int) and light_head_reduction >= 1
        ):
            raise UserError(
                "light_head_reduction must be an integer >= 1 (the light "
                "heads' first 1x1 conv keeps C // light_head_reduction "
                f"channels); got {light_head_reduction!r}."
            )
        self.units = list(units)
        self.classifier = classifier
        self.example_shape = tuple(input_shape)
        self.architecture = architecture or self.name
        self.light_head_reduction = light_head_reduction
        self.unit_output_shapes = []
        self.build((None,) + self.example_shape)

    @classmethod
    def from_sequential(
        cls,
        model: keras.Sequential,
        unit_ends: Sequence[int] | None = None,
        input_shape: Sequence[int] | None = None,
    ) -> "Network":
        """Wraps a `keras.Sequential` (sharing its layers and weights).

        The last layer is the classifier. Every other layer is a unit, or,
        with `unit_ends`, layers are grouped: unit i holds the layers from
        `unit_ends[i - 1]` up to (not including) `unit_ends[i]`, and the
        layers from `unit_ends[-1]` on form the classifier.

        Example:

        ```python
        seq = keras.Sequential([keras.Input((8, 8, 1)),
                                keras.layers.Conv2D(8, 3), keras.layers.ReLU(),
                                keras.layers.Flatten(), keras.layers.Dense(10)])
        net = localgrad.Network.from_sequential(seq, unit_ends=[2, 3])
        net.num_units  # 2: (conv, relu) and (flatten)
        ```

        Args:
            model: The Sequential model to wrap.
            unit_ends: Optional increasing layer indices at which units end.
            input_shape: Shape of one example; needed only when `model` was
                built without a `keras.Input`.

        Returns:
            A `Network` whose units share the Sequential's layers.

        Raises:
            ValueError: for bad `unit_ends` or an unknown input shape.
        """
        layers = list(model.layers)
        if len(layers) < 2:
            raise UserError(
                "from_sequential needs at least two layers (units and a "
                f"classifier); the model has {len(layers)}."
            )
        if unit_ends is None:
            unit_ends = list(range(1, len(layers)))
        unit_ends = list(unit_ends)
        if any(b <= a for a, b in zip([0] + unit_ends, unit_ends)) or unit_ends[
            -1
        ] >= len(layers):
            raise UserError(
                f"unit_ends={unit_ends} must be strictly increasing layer "
                f"indices in 1..{len(layers) - 1}, so that every unit holds "
                "at least one layer and at least one layer is left for the "
                "classifier."
            )
        if input_shape is None:
            try:
                input_shape = tuple(model.input_shape[1:])
            except (AttributeError, ValueError) as error:
                raise UserError(
                    "The Sequential model has no known input shape: start it "
                    "with keras.Input(shape) or pass input_shape=..."
                ) from error
        units = [
            _as_one_layer(layers[start:end], f"unit_{index:02d}")
            for index, (start, end) in enumerate(
                zip([0] + unit_ends[:-1], unit_ends)
            )
        ]
        classifier = _as_one_layer(layers[unit_ends[-1] :], "classifier")
        return cls(units, classifier, input_shape, architecture=model.name)

    @classmethod
    def from_functional(
        cls,
        model: keras.Model,
        cut_at: Sequence[str] | None = None,
        classifier_from: str | None = None,
    ) -> "Network":
        """Wraps a Keras functional model (sharing its layers and weights).

        Units end at *cut points*: layers whose output alone carries
        everything the rest of the graph needs (not inside a skip
        connection). By default every cut point before the classifier ends
        a unit, which gives the finest units; `cut_at` chooses them. The
        classifier is what follows the last cut point whose output has the
        rank of the model's input (for an image model, the global pooling
        and the dense layers), or starts at the layer `classifier_from`.
        Each unit and the classifier is a functional sub-model of the
        original layers, so the network predicts what the model predicts.

        Example:

        ```python
        base = keras.applications.ResNet50(
            weights=None, input_shape=(64, 64, 3), classes=200)
        net = localgrad.Network.from_functional(base)   # 38 units
        net = localgrad.Network.from_functional(
            base, cut_at=["conv2_block3_out", "conv3_block4_out",
                          "conv4_block6_out"])        # 4 units
        model = localgrad.GreedyModel(net, num_blocks=4, heads="light2")
        ```

        Args:
            model: A functional model with one input of fixed shape and one
                output (the logits or class probabilities).
            cut_at: Names of the layers after which units end, in order;
                each must be one of `Network.cut_points(model)`.
            classifier_from: Name of the classifier's first layer (its
                input must be a cut point), e.g. `"avg_pool"`.

        Returns:
            A `Network` whose units are named after their last layer.

        Raises:
            ValueError: for a name that is not a cut point (the message
                lists the valid cut points around it), a model with several
                inputs or outputs, a subclassed model, or an input shape
                that is not fixed.
        """
        units, classifier = split(model, cut_at, classifier_from)
        input_shape = tuple(model.inputs[0].shape[1:])
        if any(side is None for side in input_shape):
            raise UserError(
                f"Model {model.name!r} has input shape {input_shape} with an "
                "unknown side; build it with a fixed input shape, e.g. "
                "keras.applications.ResNet50(input_shape=(64, 64, 3), ...)."
            )
        return cls(
            units,
            classifier,
            input_shape,
            architecture=model.name,
            name=model.name,
        )

    @staticmethod
    def cut_points(model: keras.Model) -> list[str]:
        """The layer names of a functional model a unit may end after.

        A cut point's output is the only tensor the rest of the graph
        needs; inside a skip connection there is none. These are the names
        `from_functional(model, cut_at=...)` accepts (those before the
        classifier).

        Example:

        ```python
        base = keras.applications.ResNet50(weights=None,
                                           input_shape=(32, 32, 3))
        localgrad.Network.cut_points(base)[5:8]
        # ['pool1_pool', 'conv2_block1_add', 'conv2_block1_out']
        ```

        Raises:
            ValueError: for a model that is not a one-input, one-output
                functional model.
        """
        return [point.name for point in find_cut_points(model)]

    @property
    def num_units(self) -> int:
        """The number of units L."""
        return len(self.units)

    @property
    def unit_names(self) -> list[str]:
        """The units' layer names, in order."""
        return [unit.name for unit in self.units]

    def build(self, input_shape):
        """Builds every unit in order and records their output shapes."""
        features = keras.KerasTensor(input_shape)
        self.unit_output_shapes = []
        for unit in self.units:
            features = unit(features)
            self.unit_output_shapes.append(tuple(features.shape[1:]))
        logits = self.classifier(features)
        self.num_classes = int(logits.shape[-1])
        self.built = True

    def call_units(self, inputs, start: int, end: int, training=None):
        """Runs units `start` to `end - 1` on `inputs`."""
        features = inputs
        for unit in self.units[start:end]:
            features = unit(features, training=training)
        return features

    def call(self, inputs, training=None):
        features = self.call_units(inputs, 0, self.num_units, training)
        return self.classifier(features, training=training)

    def get_config(self):
        config = super().get_config()
        config.update(
            units=[keras.saving.serialize_keras_object(u) for u in self.units],
            classifier=keras.saving.serialize_keras_object(self.classifier),
            input_shape=list(self.example_shape),
            architecture=self.architecture,
            light_head_reduction=self.light_head_reduction,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["units"] = [
            keras.saving.deserialize_keras_object(u) for u in config["units"]
        ]
        config["classifier"] = keras.saving.deserialize_keras_object(
            config["classifier"]
        )
        return cls(**config)


def config_with_network(config: dict) -> dict:
    """A copy of a layer's config whose `"network"` entry is a `Network`.

    The `from_config` of what is built on a network (`GreedyModel`,
    `AssociatedModel`, the search's `RelaxedSupernet`) starts from it:
    `get_config` stores the network serialized.

    Example:

    ```python
    config = config_with_network(model.get_config())
    config["network"].num_units
    ```

    Args:
        config: A config whose `"network"` entry is a serialized `Network`.

    Returns:
        A new dict, the same but for the deserialized network.
    """
    return dict(
        config,
        network=keras.saving.deserialize_keras_object(config["network"]),
    )


def _as_one_layer(layers, name):
    if len(layers) == 1:
        return layers[0]
    return keras.Sequential(layers, name=name)
