"""Tests of localgrad.variable_names."""

import keras
import pytest

import localgrad
from localgrad.variable_names import (
    layer_variable_names,
    optimizer_variable_names,
)


class _Residual(keras.layers.Layer):
    """A user's layer: sublayers in attributes, and a variable of its own."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(4)
        self.norm = keras.layers.BatchNormalization()
        self.scale = self.add_weight(shape=(), name="scale")

    def build(self, input_shape):
        self.dense.build(input_shape)
        self.norm.build(input_shape)

    def call(self, x):
        return x + self.scale * self.norm(self.dense(x))


class _Pair(keras.layers.Layer):
    """A layer holding two variables of one name."""

    def __init__(self, first="w", second="w", size=4, **kwargs):
        super().__init__(**kwargs)
        self.first = self.add_weight(shape=(size,), name=first)
        self.second = self.add_weight(shape=(size,), name=second)

    def call(self, x):
        return x * self.first * self.second


def _sequential(*more):
    return keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(4), _Residual(), *more]
    )


def _names(model):
    names = layer_variable_names(model)
    return [names[id(variable)] for variable in model.weights]


def test_names_follow_attributes_and_layer_indices():
    assert _names(_sequential(_Pair())) == [
        "layers/0/kernel",
        "layers/0/bias",
        "layers/1/scale",
        "layers/1/dense/kernel",
        "layers/1/dense/bias",
        "layers/1/norm/gamma",
        "layers/1/norm/beta",
        "layers/1/norm/moving_mean",
        "layers/1/norm/moving_variance",
        "layers/2/w",
        "layers/2/w#1",
    ]


def test_two_builds_of_one_model_have_the_same_names():
    def build():
        network = localgrad.models.build("vgg11", (8, 8, 1), 10, width=0.125)
        return localgrad.GreedyModel(network, num_blocks=2, heads="mlp_sr")

    first, second = build(), build()
    # Keras' paths carry the numbers it gives layers as they are created.
    assert [v.path for v in first.weights] != [v.path for v in second.weights]
    assert _names(first) == _names(second)
    assert "network/units/0/conv/kernel" in _names(first)
    assert "heads/0/classifier/kernel" in _names(first)


def test_a_shared_layer_is_named_where_first_reached():
    shared = keras.layers.Dense(2)
    model = keras.Sequential([keras.Input((2,)), shared, shared])
    assert _names(model) == ["layers/0/kernel", "layers/0/bias"]


@pytest.mark.parametrize(
    "optimizer, slots, own",
    [
        (
            keras.optimizers.SGD(0.1, momentum=0.9),
            ["momentum"],
            ["iteration", "learning_rate"],
        ),
        (
            keras.optimizers.Adam(),
            ["momentum", "velocity"],
            ["iteration", "learning_rate"],
        ),
        (
            keras.optimizers.AdamW(amsgrad=True),
            ["momentum", "velocity", "velocity_hat"],
            ["iteration", "learning_rate"],
        ),
        (
            keras.optimizers.LossScaleOptimizer(
                keras.optimizers.SGD(0.1, momentum=0.9)
            ),
            ["momentum"],
            [
                "iteration",
                "learning_rate",
                "step_counter",
                "dynamic_scale",
                "iteration#1",
                "learning_rate#1",
            ],
        ),
    ],
    ids=["sgd_momentum", "adam", "adamw_amsgrad", "loss_scale"],
)
def test_slots_are_named_after_their_model_variable(optimizer, slots, own):
    """Fails if Keras changes how it names slots (see the module)."""
    model = _sequential(_Pair("u", "v"))
    optimizer.build(model.trainable_variables)
    names = optimizer_variable_names(optimizer, model)
    model_names = layer_variable_names(model)
    expected = {
        f"{model_names[id(variable)]}/{slot}": variable
        for variable in model.trainable_variables
        for slot in slots
    }
    variables = {names[id(v)]: v for v in optimizer.variables}
    inner = getattr(optimizer, "inner_optimizer", None)
    variables |= {names[id(v)]: v for v in inner.variables} if inner else {}
    assert sorted(variables) == sorted(list(expected) + own)
    for name, reference in expected.items():
        assert variables[name].shape == reference.shape
        assert variables[name].name.startswith(reference.path.replace("/", "_"))


@pytest.mark.parametrize(
    "layers",
    [
        # Paths "a/b_c" and "a_b/c" both read "a_b_c" in a slot's name.
        [_Pair("b_c", "d", size=2, name="a"), _Pair("c", size=2, name="a_b")],
        # Two variables of one name in one layer: one path.
        [_Pair(size=2)],
    ],
    ids=["similar_paths", "one_path"],
)
def test_a_slot_that_fits_two_variables_is_refused(layers):
    model = keras.Sequential([keras.Input((2,)), *layers])
    optimizer = keras.optimizers.SGD(0.1, momentum=0.9)
    optimizer.build(model.trainable_variables)
    with pytest.raises(ValueError, match="could belong to any of"):
        optimizer_variable_names(optimizer, model)
