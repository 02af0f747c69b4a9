"""Pipelined training: block k trains on block k - 1's output of the step
before, all blocks at once, each on its device."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import localgrad

BATCH = 8
EXAMPLES = 40  # 5 batches per epoch: more than the 3-block pipeline's depth.


def _loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _optimizer():
    return keras.optimizers.SGD(0.1, momentum=0.9)


def _network(seed=0):
    keras.utils.set_random_seed(seed)
    units = [
        keras.Sequential(
            [
                keras.layers.Dense(10, activation="relu"),
                keras.layers.BatchNormalization(),
            ]
        )
        for _ in range(6)
    ]
    return localgrad.Network(units, keras.layers.Dense(3), input_shape=(5,))


def _model(devices=None, seed=0, **compile_options):
    # Keras' moving averages: the hand-written pipeline keeps them too.
    model = localgrad.GreedyModel(
        _network(seed),
        num_blocks=3,
        heads="linear",
        devices=devices,
        precise_batch_norm=0,
    )
    model.compile(
        optimizer=_optimizer(),
        loss=_loss(),
        metrics=["accuracy"],
        **compile_options,
    )
    return model


def _data(size=EXAMPLES, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(size, 5)).astype("float32")
    y = (x[:, 0] > 0).astype("int32") + (x[:, 1] > 0.5).astype("int32")
    return x, y


def _pipelined():
    return localgrad.callbacks.GreedySchedule("pipelined", verbose=0)


def _reference_weights(x, y, epochs):
    """A hand-written pipeline over the layers of an identical twin model.

    At every tick block 0 takes the next batch and block k > 0 takes what
    block k - 1 output at the tick before, with that batch's labels; each
    block does forward, backward and update on its own. The pipeline fills
    at the start of an epoch and empties at its end.
    """
    twin = localgrad.GreedyModel(_network(), num_blocks=3, heads="linear")
    heads = list(twin.heads) + [twin.network.classifier]
    layers = [
        (twin.network.units[start:end], head)
        for (start, end), head in zip(twin.block_ranges, heads)
    ]
    optimizers = [_optimizer() for _ in layers]
    loss_fn = _loss()
    batches = [
        (x[i : i + BATCH], y[i : i + BATCH]) for i in range(0, len(x), BATCH)
    ]
    for _ in range(epochs):
        waiting = [None] * len(layers)  # waiting[k]: block k's next input
        for tick in range(len(batches) + len(layers) - 1):
            inputs = [batches[tick] if tick < len(batches) else None]
            inputs += waiting[1:]
            waiting = [None] * len(layers)
            for k, ((units, head), optimizer) in enumerate(
                zip(layers, optimizers)
            ):
                if inputs[k] is None:
                    continue
                features, labels = inputs[k]
                variables = [
                    v
                    for layer in units + [head]
                    for v in layer.trainable_variables
                ]
                with tf.GradientTape() as tape:
                    outputs = features
                    for unit in units:
                        outputs = unit(outputs, training=True)
                    loss = loss_fn(labels, head(outputs, training=True))
                optimizer.apply_gradients(
                    zip(tape.gradient(loss, variables), variables)
                )
                if k + 1 < len(layers):
                    waiting[k + 1] = (tf.stop_gradient(outputs), labels)
    return [v.numpy() for v in twin.weights]


def _state(model):
    variables = list(model.weights)
    for optimizer in model.block_optimizers:
        variables += list(optimizer.variables)
    return [v.numpy().copy() for v in variables]


@pytest.fixture(scope="module")
def on_devices(tmp_path_factory):
    """A pipelined model on three devices: one epoch, saved, then another.

    The hand-written pipeline's test reads the 2-epoch model, the round
    trip's test the files and state after the first epoch.
    """
    directory = tmp_path_factory.mktemp("on_devices")
    x, y = _data()
    model = _model(devices=["/cpu:0", "/cpu:1", "/cpu:2"])
    options = dict(batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    model.fit(x, y, callbacks=[_pipelined()], **options)
    path = os.path.join(directory, "model.keras")
    model.save(path)
    weights_path = os.path.join(directory, "model.weights.h5")
    model.save_weights(weights_path)
    saved = _state(model)
    model.fit(x, y, callbacks=[_pipelined()], **options)
    return model, path, weights_path, saved


@pytest.mark.numerics
def test_three_blocks_on_three_devices_match_a_hand_written_pipeline(
    on_devices,
):
    x, y = _data()
    model = on_devices[0]  # Two epochs (two fits of one).
    expected = _reference_weights(x, y, epochs=2)
    ours = [v.numpy() for v in model.weights]
    assert len(ours) == len(expected)
    for a, b in zip(ours, expected):  # Equal up to float rounding.
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # Every block trained on every batch exactly once per epoch.
    iterations = [o.iterations.numpy() for o in model.block_optimizers]
    assert iterations == [10, 10, 10]
    assert model.optimizer.iterations.numpy() == 10
    assert model.execution == "synchronous" and not model.in_flight


def test_pipelined_logs_and_weights_are_those_of_synchronous_training():
    x, y = _data()
    xv, yv = _data(size=16, seed=3)
    histories, weights = [], []
    for callbacks in ([], [_pipelined()]):
        model = _model(steps_per_execution=2)
        history = model.fit(
            x,
            y,
            batch_size=BATCH,
            epochs=2,
            shuffle=False,
            verbose=0,
            validation_data=(xv, yv),
            callbacks=callbacks,
        )
        histories.append(history.history)
        weights.append([v.numpy() for v in model.weights])
        evaluated = model.evaluate(xv, yv, return_dict=True, verbose=0)
        assert evaluated["accuracy"] == pytest.approx(
            history.history["val_accuracy"][-1]
        )
        np.testing.assert_allclose(
            model.predict(xv, verbose=0), model.network(xv), atol=1e-6
        )
    synchronous, pipelined = histories
    assert set(pipelined) == set(synchronous)
    assert "block_2_accuracy" in pipelined and "val_block_1_loss" in pipelined
    for name, values in synchronous.items():
        np.testing.assert_allclose(pipelined[name], values, rtol=1e-5)
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_a_dataset_with_unknown_length_is_drained_when_it_runs_out():
    x, y = _data()
    dataset = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .filter(lambda *_: True)  # Unknown cardinality: no steps known.
        .batch(BATCH)
    )
    model = _model()
    model.fit(
        dataset, epochs=1, verbose=0, shuffle=False, callbacks=[_pipelined()]
    )
    iterations = [o.iterations.numpy() for o in model.block_optimizers]
    assert iterations == [5, 5, 5]


@pytest.mark.parametrize("mode", ["sequential", "multilap"])
def test_pipelining_with_a_sequential_schedule_is_refused(mode):
    x, y = _data()
    model = _model()
    laps = 2 if mode == "multilap" else 1
    schedule = localgrad.callbacks.GreedySchedule(mode, laps=laps, verbose=0)
    epochs = schedule.total_epochs(model.num_blocks)  # The schedule's run.
    with pytest.raises(ValueError, match="cannot be pipelined"):
        model.fit(
            x,
            y,
            batch_size=BATCH,
            epochs=epochs,
            verbose=0,
            callbacks=[_pipelined(), schedule],
        )
    model = _model()
    model.trained_blocks = [1]
    with pytest.raises(ValueError, match="Drop the sequential"):
        model.execution = "pipelined"
    with pytest.raises(ValueError, match="Unknown execution"):
        model.execution = "zigzag"


def test_a_pipelined_model_round_trips_exactly(on_devices):
    x, y = _data()
    model, path, weights_path, saved = on_devices
    loaded = keras.saving.load_model(path)
    placed = _model(devices=["/cpu:2", "/cpu:1", "/cpu:0"], seed=4)
    placed.load_weights(weights_path)
    for restored in (loaded, placed):
        for a, b in zip(saved, _state(restored)):
            np.testing.assert_array_equal(a, b)
    # The fixture's model trained its second epoch after saving.
    for each in (loaded, placed):
        each.fit(
            x,
            y,
            batch_size=BATCH,
            epochs=1,
            shuffle=False,
            verbose=0,
            callbacks=[_pipelined()],
        )
    for restored in (loaded, placed):
        for a, b in zip(_state(model), _state(restored)):
            np.testing.assert_allclose(a, b, atol=1e-6)


def test_pipelining_under_a_mirrored_strategy_is_refused():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = _model()
    with pytest.raises(ValueError, match="MirroredStrategy synchronously"):
        model.execution = "pipelined"


@pytest.mark.numerics
def test_pipelined_with_xla_on_devices_equals_synchronous():
    x, y = _data()
    weights = []
    for callbacks in ([], [_pipelined()]):
        model = _model(devices=["/cpu:0", "/cpu:1", "/cpu:2"], jit_compile=True)
        model.fit(
            x,
            y,
            batch_size=BATCH,
            epochs=1,
            shuffle=False,
            verbose=0,
            callbacks=callbacks,
        )
        model.evaluate(x, y, verbose=0)  # XLA cannot span the devices.
        weights.append([v.numpy() for v in model.weights])
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
