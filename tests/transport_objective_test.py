"""GreedyModel(transport=...): the transport term as a block objective."""

import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import localgrad
from localgrad import Transport
from localgrad.blocks import HandOver, HeadObjective, TransportObjective

WIDTH = 6
BATCH = 8
SPARSE_CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


@keras.saving.register_keras_serializable(package="transport_objective_test")
class DenseResidual(keras.layers.Layer):
    """x + tanh(x W + b): a residual unit that exposes its branch."""

    is_residual = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.branch = keras.layers.Dense(WIDTH, activation="tanh")

    def build(self, input_shape):
        self.branch.build(input_shape)

    def call(self, inputs, training=None, return_residual=False):
        residual = self.branch(inputs)
        outputs = inputs + residual
        return (outputs, residual) if return_residual else outputs


def _dense_head(shape, num_classes):
    return keras.Sequential([keras.layers.Dense(num_classes)])


def _model(transport=None, seed=0, num_blocks=3, devices=None, **options):
    keras.utils.set_random_seed(seed)
    units = [DenseResidual(name=f"unit_{k}") for k in range(num_blocks)]
    network = localgrad.Network(
        units, keras.layers.Dense(3), input_shape=(WIDTH,)
    )
    model = localgrad.GreedyModel(
        network,
        num_blocks=num_blocks,
        heads=_dense_head,
        transport=transport,
        devices=devices,
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.1),
        loss=SPARSE_CE,
        metrics=["accuracy"],
        **options,
    )
    return model


def _data(size=32, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(size, WIDTH)).astype("float32")
    y = (x[:, 0] > 0).astype("int32") + (x[:, 1] > 0.5).astype("int32")
    return x, y


def _fit(model, epochs=1, schedule=None, callbacks=(), size=32):
    x, y = _data(size)
    schedule = schedule or localgrad.callbacks.GreedySchedule(
        "parallel", verbose=0
    )
    return model.fit(
        x,
        y,
        batch_size=BATCH,
        epochs=epochs,
        shuffle=False,
        verbose=0,
        callbacks=[schedule, *callbacks],
    )


def _weights(model):
    return [v.numpy().copy() for v in model.weights]


def _multipliers(model):
    return [float(t.multiplier.value) for t in model.block_transports]


MODES = {
    "eager": dict(run_eagerly=True),
    "function": dict(),
    "jit": dict(jit_compile=True),
}


@pytest.mark.numerics
@pytest.mark.parametrize(
    "schedule, mode",
    [
        ("parallel", "eager"),
        ("parallel", "function"),
        ("parallel", "jit"),
        ("multilap", "function"),
    ],
)
def test_infinite_tau_trains_exactly_like_no_transport(schedule, mode):
    def schedule_callback():
        return localgrad.callbacks.GreedySchedule(
            schedule, laps=2 if schedule == "multilap" else 1, verbose=0
        )

    epochs = 3 if schedule == "multilap" else 2
    plain = _model(**MODES[mode])
    plain_history = _fit(plain, epochs, schedule_callback()).history
    infinite = _model(Transport(tau=math.inf, varying=True), **MODES[mode])
    history = _fit(infinite, epochs, schedule_callback()).history
    assert len(infinite.weights) == len(plain.weights)
    for a, b in zip(_weights(plain), _weights(infinite)):
        np.testing.assert_array_equal(a, b)
    for name, values in plain_history.items():
        assert history[name] == values
    assert history["block_2_transport"][-1] == 0.0


def _hand_step(initial, x, y, tau, learning_rate):
    """Block 1's variables after one SGD step on CE + Σ mean(g²) / (2τ)."""
    w0, b0, w1, b1, wh, bh = [tf.Variable(v) for v in initial]
    x = tf.constant(x)
    features = x + tf.tanh(x @ w0 + b0)  # Block 0, not differentiated.
    with tf.GradientTape() as tape:
        residual = tf.tanh(features @ w1 + b1)
        logits = (features + residual) @ wh + bh
        cross_entropy = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
        )
        loss = cross_entropy + tf.reduce_mean(residual**2) / (2 * tau)
    gradients = tape.gradient(loss, [w1, b1, wh, bh])
    return [
        v.numpy() - learning_rate * g.numpy()
        for v, g in zip([w1, b1, wh, bh], gradients)
    ]


def test_the_term_trains_its_block_only_and_matches_a_hand_step():
    x, y = _data(BATCH)
    plain = _model()
    regularized = _model(Transport(tau=[math.inf, 0.25, math.inf]))
    blocks = regularized.blocks
    initial = [
        v.numpy()
        for v in blocks[0].units[0].trainable_variables
        + blocks[1].units[0].trainable_variables
        + blocks[1].head.trainable_variables
    ]
    plain.train_on_batch(x, y)
    regularized.train_on_batch(x, y)

    expected = _hand_step(initial, x, y, tau=0.25, learning_rate=0.1)
    block_1 = regularized.block_trainable_variables(1)
    for variable, value in zip(block_1, expected):
        np.testing.assert_allclose(variable.numpy(), value, atol=1e-6)
    # The term moved block 1 (the plain model's step differs) ...
    moved = plain.block_trainable_variables(1)[0].numpy()
    assert not np.allclose(moved, block_1[0].numpy(), atol=1e-6)
    # ... and nothing else: blocks 0 and 2 took the plain model's step.
    for block in (0, 2):
        for a, b in zip(
            plain.block_trainable_variables(block),
            regularized.block_trainable_variables(block),
        ):
            np.testing.assert_array_equal(a.numpy(), b.numpy())


class _RecordCrossEntropy(keras.callbacks.Callback):
    """Before each step, every block's cross-entropy on the step's batch."""

    def __init__(self, x, y):
        super().__init__()
        self.x, self.y = x, y
        self.cross_entropies, self.multipliers = [], []

    def on_train_batch_begin(self, batch, logs=None):
        rows = slice(batch * BATCH, (batch + 1) * BATCH)
        logits = self.model.head_outputs(self.x[rows], training=True)
        self.cross_entropies.append(
            [float(SPARSE_CE(self.y[rows], out)) for out in logits]
        )

    def on_train_batch_end(self, batch, logs=None):
        self.multipliers.append(_multipliers(self.model))


def test_uzawa_multipliers_follow_the_formula_over_fit_steps():
    model = _model(Transport(uzawa_step=0.5, uzawa_every=2))
    recorder = _RecordCrossEntropy(*_data())
    history = _fit(model, epochs=2, callbacks=[recorder]).history
    expected = [1.0, 2.0, 3.0]  # λ_0 (k + 1)^p
    assert len(recorder.multipliers) == 8
    for step, (cross_entropies, multipliers) in enumerate(
        zip(recorder.cross_entropies, recorder.multipliers), start=1
    ):
        if step % 2 == 0:
            expected = [
                lam + 0.5 * ce for lam, ce in zip(expected, cross_entropies)
            ]
        np.testing.assert_allclose(multipliers, expected, rtol=1e-5)
    assert all(lam > k + 1 for k, lam in enumerate(expected))
    for k in range(3):
        assert history[f"block_{k}_uzawa_lambda"][-1] == pytest.approx(
            expected[k], rel=1e-6
        )
        assert history[f"block_{k}_transport"][-1] > 0
        assert int(model.block_transports[k].uzawa_steps.value) == 8


@pytest.mark.parametrize(
    "schedule",
    [
        localgrad.callbacks.GreedySchedule("sequential", verbose=0),
        localgrad.callbacks.GreedySchedule("multilap", laps=2, verbose=0),
    ],
    ids=["sequential", "multilap"],
)
def test_uzawa_counts_only_the_steps_a_block_trains(schedule):
    model = _model(Transport(uzawa_step=1.0, uzawa_every=3))
    history = _fit(model, schedule.total_epochs(3), schedule).history
    # Every block trains 4 steps (one epoch of 4 batches, over the laps).
    steps = [int(t.uzawa_steps.value) for t in model.block_transports]
    assert steps == [4, 4, 4]
    assert all(lam > k + 1 for k, lam in enumerate(_multipliers(model)))
    assert history["block_2_uzawa_lambda"][-1] == pytest.approx(
        _multipliers(model)[2]
    )


@pytest.mark.numerics
def test_pipelined_on_devices_trains_like_synchronous():
    transport = Transport(uzawa_step=1.0, uzawa_every=2)
    synchronous = _model(transport)
    _fit(synchronous)
    devices = ["/cpu:0", "/cpu:1", "/cpu:2"]
    pipelined = _model(transport, devices=devices)
    multiplier = pipelined.block_transports[2].multiplier.value
    assert multiplier.device.endswith("CPU:2")
    _fit(pipelined, schedule=localgrad.callbacks.GreedySchedule("pipelined"))
    assert _multipliers(pipelined) == pytest.approx(
        _multipliers(synchronous), rel=1e-5
    )
    for a, b in zip(_weights(synchronous), _weights(pipelined)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _trained_uzawa(seed=0):
    model = _model(Transport(uzawa_step=1.0, uzawa_every=1), seed=seed)
    _fit(model)
    return model


def _assert_same_state(first, second):
    assert _multipliers(first) == _multipliers(second)
    for a, b in zip(_weights(first), _weights(second)):
        np.testing.assert_array_equal(a, b)


def test_multipliers_round_trip_through_save_weights(tmp_path):
    model = _trained_uzawa()
    path = str(tmp_path / "model.weights.h5")
    model.save_weights(path)
    restored = _model(Transport(uzawa_step=1.0, uzawa_every=1), seed=5)
    assert _multipliers(restored) == [1.0, 2.0, 3.0]
    restored.load_weights(path)
    _assert_same_state(model, restored)
    x, y = _data(BATCH, seed=2)
    model.train_on_batch(x, y)
    restored.train_on_batch(x, y)
    _assert_same_state(model, restored)


def test_multipliers_round_trip_through_epoch_checkpoint(tmp_path):
    checkpoint = localgrad.callbacks.EpochCheckpoint(str(tmp_path))
    model = _model(Transport(uzawa_step=1.0, uzawa_every=1))
    _fit(model, callbacks=[checkpoint])
    restored = _model(Transport(uzawa_step=1.0, uzawa_every=1), seed=5)
    fresh = localgrad.callbacks.EpochCheckpoint(str(tmp_path))
    assert fresh.restore(restored) == 1
    _assert_same_state(model, restored)
    assert "block_1_uzawa_lambda" in fresh.history[0]


def test_keras_file_keeps_the_settings_and_multipliers(tmp_path):
    model = _trained_uzawa()
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert restored.transport.get_config() == model.transport.get_config()
    _assert_same_state(model, restored)


def test_objective_adds_the_weighted_term_and_keeps_its_terms():
    model = _model(Transport(tau=2.0))
    objective = model.blocks[1].objective
    assert isinstance(objective, TransportObjective)
    assert isinstance(objective.objective, HeadObjective)
    x, y = _data(BATCH)
    features = model.blocks[0].call_units(HandOver(x)).features
    outputs, local = objective.run(model.blocks[1].units, HandOver(features), y)
    residual = np.tanh(
        features @ model.blocks[1].units[0].branch.kernel.numpy()
        + model.blocks[1].units[0].branch.bias.numpy()
    )
    term = float(np.mean(residual**2))
    base = float(objective(outputs, y).loss)
    assert float(local.terms["transport_term"]) == pytest.approx(term, 1e-5)
    assert float(local.terms["base_loss"]) == pytest.approx(base, 1e-6)
    assert float(local.loss) == pytest.approx(base + term / 4, 1e-5)
    assert objective.metrics == [model.block_transports[1].term_tracker]


def test_evaluation_logs_the_terms_without_moving_the_multipliers():
    model = _model(Transport(uzawa_step=1.0, uzawa_every=1))
    logs = model.evaluate(*_data(), verbose=0, return_dict=True)
    assert _multipliers(model) == [1.0, 2.0, 3.0]
    assert logs["block_2_uzawa_lambda"] == 3.0
    assert logs["block_0_transport"] > 0
    steps = [int(t.uzawa_steps.value) for t in model.block_transports]
    assert steps == [0, 0, 0]


def test_bad_transport_is_a_clear_error():
    network = localgrad.models.build("vgg11", (16, 16, 1), 10, width=0.125)
    with pytest.raises(ValueError, match=r"block 0 \(units 0\.\.3\)"):
        localgrad.GreedyModel(
            network, boundaries=[4], transport=Transport(tau=1.0)
        )
    with pytest.raises(ValueError, match="must be a localgrad.Transport"):
        localgrad.GreedyModel(network, num_blocks=2, transport={"tau": 1.0})
