"""ComponentOptimizer: the two optimizers of an Associated Learning block."""

import keras


class ComponentOptimizer:
    """Updates a component's forward side and label side separately.

    The official code trains f_i and b_i (associated loss) with one Adam
    and g_i and h_i (autoencoder loss) with another at twice the learning
    rate. The two losses train disjoint variables, so one tape over their
    sum gives each side exactly its own loss's gradient; this optimizer
    sends each gradient to its side's optimizer. It is a block's optimizer
    (`Block.optimizer`): `build`, `built`, `apply_gradients`,
    `scale_loss`, `iterations`, `learning_rate` and `variables`, as a Keras
    optimizer.

    Example:

    ```python
    optimizer = ComponentOptimizer(
        keras.optimizers.Adam(1e-4), keras.optimizers.Adam(2e-4),
        label_side_variables=encoder.trainable_variables
        + decoder.trainable_variables)
    optimizer.build(block.trainable_variables)
    ```

    Args:
        forward: The optimizer of f_i and b_i.
        label_side: The optimizer of g_i and h_i.
        label_side_variables: The variables `label_side` updates; every
            other variable goes to `forward`.
        label_side_factor: The label side's learning rate over the
            forward side's, kept when a new rate is set.
    """

    def __init__(
        self,
        forward: keras.optimizers.Optimizer,
        label_side: keras.optimizers.Optimizer,
        label_side_variables,
        label_side_factor: float = 2.0,
    ):
        self.forward = forward
        self.label_side = label_side
        self.label_side_factor = float(label_side_factor)
        self._label_side_ids = {id(v) for v in label_side_variables}

    @property
    def optimizers(self) -> list:
        """`[forward, label_side]`."""
        return [self.forward, self.label_side]

    @property
    def built(self) -> bool:
        """Whether both optimizers are built."""
        return self.forward.built and self.label_side.built

    @property
    def iterations(self):
        """The forward side's step count (both sides step together)."""
        return self.forward.iterations

    @property
    def learning_rate(self):
        """The forward side's learning rate (the label side's is scaled)."""
        return self.forward.learning_rate

    @learning_rate.setter
    def learning_rate(self, rate):
        self.forward.learning_rate = rate
        self.label_side.learning_rate = scaled_rate(
            rate, self.label_side_factor
        )

    @property
    def variables(self) -> list:
        """Both optimizers' variables (forward first)."""
        return list(self.forward.variables) + list(self.label_side.variables)

    def build(self, variables) -> None:
        """Builds each side's optimizer over its own variables."""
        forward, label_side = self._split(variables)
        self.forward.build(forward)
        self.label_side.build(label_side)

    def scale_loss(self, loss):
        """The loss unchanged (loss scaling is not supported)."""
        return loss

    def apply_gradients(self, grads_and_vars) -> None:
        """Applies each gradient with its variable's side's optimizer."""
        pairs = list(grads_and_vars)
        forward = [p for p in pairs if id(p[1]) not in self._label_side_ids]
        label_side = [p for p in pairs if id(p[1]) in self._label_side_ids]
        self.forward.apply_gradients(forward)
        self.label_side.apply_gradients(label_side)

    def _split(self, variables):
        forward = [v for v in variables if id(v) not in self._label_side_ids]
        label_side = [v for v in variables if id(v) in self._label_side_ids]
        return forward, label_side


@keras.saving.register_keras_serializable(package="localgrad")
class ScaledLearningRate(keras.optimizers.schedules.LearningRateSchedule):
    """A learning-rate schedule times a constant factor.

    Example:

    ```python
    ScaledLearningRate(keras.optimizers.schedules.CosineDecay(1e-4, 1000),
                       factor=2.0)
    ```

    Args:
        schedule: A `LearningRateSchedule`.
        factor: The factor.
    """

    def __init__(self, schedule, factor: float):
        self.schedule = schedule
        self.factor = float(factor)

    def __call__(self, step):
        return self.schedule(step) * self.factor

    def get_config(self):
        return {
            "schedule": keras.optimizers.schedules.serialize(self.schedule),
            "factor": self.factor,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["schedule"] = keras.optimizers.schedules.deserialize(
            config["schedule"]
        )
        return cls(**config)


def clone_optimizer(
    optimizer: keras.optimizers.Optimizer, learning_rate_factor: float = 1.0
) -> keras.optimizers.Optimizer:
    """A fresh optimizer configured as `optimizer`, its rate times a factor.

    Example:

    ```python
    clone_optimizer(keras.optimizers.Adam(1e-4), 2.0).learning_rate  # 2e-4
    ```
    """
    config = optimizer.get_config()
    rate = config["learning_rate"]
    if isinstance(rate, dict):
        rate = keras.optimizers.schedules.deserialize(rate)
    config["learning_rate"] = scaled_rate(rate, learning_rate_factor)
    return optimizer.__class__.from_config(config)


def scaled_rate(rate, factor: float):
    """A float or schedule times `factor` (unchanged when it is 1)."""
    if factor == 1.0:
        return rate
    if isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
        return ScaledLearningRate(rate, factor)
    return float(rate) * factor
