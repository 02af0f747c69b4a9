"""Tests of localgrad.train_setup and localgrad.train_config."""

import keras
import numpy as np
import pytest

import localgrad
from localgrad import train_config, train_setup
from localgrad.callbacks import GreedySchedule


def _lr(schedule, step):
    return float(keras.ops.convert_to_numpy(schedule(step)))


def test_cosine_with_warmup_rises_then_decays_to_zero():
    lr = train_setup.learning_rate_schedule(
        "cosine", 0.1, total_steps=100, warmup_steps=10
    )
    assert _lr(lr, 0) == pytest.approx(0.0)
    assert _lr(lr, 5) == pytest.approx(0.05)
    assert _lr(lr, 10) == pytest.approx(0.1)
    assert _lr(lr, 55) == pytest.approx(0.05, abs=1e-6)  # Half-way down.
    assert _lr(lr, 100) == pytest.approx(0.0, abs=1e-7)


def test_step_schedule_multiplies_at_each_boundary():
    lr = train_setup.learning_rate_schedule(
        "step", 0.1, 90, decay_boundaries=[30, 60], decay_factor=0.1
    )
    values = [_lr(lr, step) for step in (0, 30, 31, 60, 61, 89)]
    np.testing.assert_allclose(
        values, [0.1, 0.1, 0.01, 0.01, 0.001, 0.001], rtol=1e-6
    )
    assert train_setup.learning_rate_schedule("constant", 0.3, 10) == 0.3


def test_step_schedule_with_a_factor_per_boundary():
    # The AL paper's: x0.1 at 40, 60 and 80 % of the steps, x0.5 at 90 %.
    lr = train_setup.learning_rate_schedule(
        "step",
        1e-4,
        100,
        decay_boundaries=[40, 60, 80, 90],
        decay_factor=[0.1, 0.1, 0.1, 0.5],
    )
    values = [_lr(lr, step) for step in (0, 40, 41, 61, 81, 90, 91, 99)]
    expected = [1e-4, 1e-4, 1e-5, 1e-6, 1e-7, 1e-7, 5e-8, 5e-8]
    np.testing.assert_allclose(values, expected, rtol=1e-5)
    with pytest.raises(ValueError, match="one factor per boundary"):
        train_setup.learning_rate_schedule(
            "step", 0.1, 10, decay_boundaries=[5], decay_factor=[0.1, 0.5]
        )
    with pytest.raises(ValueError, match="must be > 0"):
        train_setup.learning_rate_schedule(
            "step", 0.1, 10, decay_boundaries=[5], decay_factor=[0.0]
        )


def test_schedule_rejects_bad_steps():
    with pytest.raises(ValueError, match="warmup_steps"):
        train_setup.learning_rate_schedule("cosine", 0.1, 10, warmup_steps=10)
    with pytest.raises(ValueError, match="must increase"):
        train_setup.learning_rate_schedule(
            "step", 0.1, 10, decay_boundaries=[5, 3]
        )
    with pytest.raises(ValueError, match="lr_schedule"):
        train_setup.learning_rate_schedule("linear", 0.1, 10)


def test_optimizer_carries_momentum_and_weight_decay():
    sgd = train_setup.build_optimizer(
        "sgd", 0.1, momentum=0.8, nesterov=True, weight_decay=5e-4
    )
    assert isinstance(sgd, keras.optimizers.SGD)
    assert sgd.momentum == pytest.approx(0.8) and sgd.nesterov
    assert sgd.weight_decay == pytest.approx(5e-4)
    adam = train_setup.build_optimizer("adam", 1e-3, weight_decay=0.0)
    assert isinstance(adam, keras.optimizers.Adam)
    assert adam.weight_decay is None
    with pytest.raises(ValueError, match="optimizer"):
        train_setup.build_optimizer("rmsprop", 0.1)


def test_label_smoothing_switches_to_one_hot_loss():
    assert isinstance(
        train_setup.build_loss(0.0),
        keras.losses.SparseCategoricalCrossentropy,
    )
    smooth = train_setup.build_loss(0.1)
    assert isinstance(smooth, keras.losses.CategoricalCrossentropy)
    # Smoothing 0.1 over 2 classes: targets (0.95, 0.05).
    logits = np.array([[2.0, 0.0]], "float32")
    expected = -(
        0.95 * np.log(1 / (1 + np.exp(-2.0)))
        + 0.05 * np.log(1 / (1 + np.exp(2.0)))
    )
    value = float(smooth(np.array([[1.0, 0.0]], "float32"), logits))
    assert value == pytest.approx(expected, rel=1e-5)


def test_block_train_steps_follow_the_schedule():
    parallel = GreedySchedule("parallel")
    assert train_setup.block_train_steps(parallel, 3, 6, 10) == [60] * 3
    sequential = GreedySchedule(
        "sequential", epochs_per_block=2.0, extra_epochs_per_depth=1.0
    )
    # Block k: 2 + k epochs of 10 steps; multi-lap keeps the budget.
    assert train_setup.block_train_steps(sequential, 3, 9, 10) == [20, 30, 40]
    laps = GreedySchedule(
        "multilap", laps=2, epochs_per_block=2.0, extra_epochs_per_depth=1.0
    )
    assert train_setup.block_train_steps(laps, 3, 9, 10) == [20, 30, 40]
    with pytest.raises(ValueError, match="epochs=9"):
        train_setup.block_train_steps(sequential, 3, 6, 10)


def _tiny_network():
    return localgrad.models.build("vgg11", (8, 8, 1), 10, width=0.125)


def test_methods_choose_blocks_and_heads():
    network = _tiny_network()
    backprop = train_setup.build_greedy_model(network, "backprop", 4)
    assert backprop.num_blocks == 1 and backprop.heads == []
    dgl = train_setup.build_greedy_model(network, "dgl", 3)
    assert dgl.num_blocks == 3
    assert [h.head_name for h in dgl.heads] == ["mlp_sr", "mlp_sr"]
    predsim = train_setup.build_greedy_model(
        network, "predsim", boundaries=[1, 3], num_blocks=3
    )
    assert predsim.boundaries == [1, 3]
    assert [h.head_name for h in predsim.heads] == ["predsim", "predsim"]
    with pytest.raises(ValueError, match="method"):
        train_setup.build_greedy_model(network, "dni", 2)


def test_block_learning_rates_are_set_per_block():
    model = train_setup.build_greedy_model(_tiny_network(), "dgl", 2)
    model.compile(
        optimizer=keras.optimizers.SGD(
            train_setup.learning_rate_schedule("cosine", 0.1, 100)
        ),
        loss=train_setup.build_loss(),
    )
    train_setup.set_block_learning_rates(
        model,
        [
            train_setup.learning_rate_schedule("cosine", 0.1, steps)
            for steps in (10, 90)
        ],
    )
    for optimizer in model.block_optimizers:
        optimizer.iterations.assign(10)
    rates = [
        float(keras.ops.convert_to_numpy(o.learning_rate))
        for o in model.block_optimizers
    ]
    assert rates[0] == pytest.approx(0.0, abs=1e-7)  # Its 10 steps are done.
    assert rates[1] == pytest.approx(0.05 * (1 + np.cos(np.pi / 9)))
    with pytest.raises(ValueError, match="learning rates"):
        train_setup.set_block_learning_rates(model, [0.1])


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("method", "dni", "Unknown method 'dni'"),
        ("schedule", "random", "Unknown schedule 'random'"),
        ("optimizer", "rmsprop", "Unknown optimizer 'rmsprop'"),
        ("lr_schedule", "linear", "Unknown lr_schedule"),
        ("mixed_precision", "float16", "Unknown mixed_precision"),
        ("balance", "speed", "Unknown balance"),
        ("batch_size", 0, "batch_size must be a positive integer"),
        ("label_smoothing", 1.0, "label_smoothing"),
        ("warmup_epochs", 1.0, "needs lr_schedule='cosine'"),
        ("boundaries", (2, 4), "set num_blocks=3"),
    ],
)
def test_check_config_names_the_bad_field(field, value, message):
    config = train_config.default_config()
    if field == "warmup_epochs":
        config.lr_schedule = "step"
    config[field] = value
    with pytest.raises(ValueError, match=message):
        train_config.check_config(config)


@pytest.mark.parametrize(
    "schedule, factors, message",
    [
        ("cosine", (0.5,), "are for lr_schedule='step'"),
        ("step", (0.1, 0.5), "one factor per entry"),
        ("step", (-0.1,), "numbers > 0"),
    ],
)
def test_check_config_checks_the_decay_factors(schedule, factors, message):
    config = train_config.default_config()
    config.lr_schedule = schedule
    config.lr_decay_factors = factors
    if schedule == "step":
        config.lr_decay_epochs = (3,)
    with pytest.raises(ValueError, match=message):
        train_config.check_config(config)
    config.lr_schedule, config.lr_decay_factors = "step", (0.5,)
    config.lr_decay_epochs = (3,)
    train_config.check_config(config)


def test_check_config_rejects_contradictory_methods():
    config = train_config.default_config()
    config.method = "backprop"
    with pytest.raises(ValueError, match="num_blocks=1"):
        train_config.check_config(config)
    config = train_config.default_config()
    config.method = "predsim"
    config.heads = "mlp_sr"
    with pytest.raises(ValueError, match="'predsim' heads"):
        train_config.check_config(config)
    config = train_config.default_config()
    with config.unlocked():
        config.num_block = 3  # A typo.
    with pytest.raises(ValueError, match="num_block"):
        train_config.check_config(config)
    train_config.check_config(train_config.default_config())


def test_variants_set_method_and_blocks():
    config = train_config.default_config()
    train_config.apply_variant(config, "predsim_k2")
    assert (config.method, config.num_blocks) == ("predsim", 2)
    train_config.apply_variant(config, "backprop")
    assert (config.method, config.num_blocks) == ("backprop", 1)
    with pytest.raises(ValueError, match="dgl_k<K>"):
        train_config.apply_variant(config, "dgl4")
