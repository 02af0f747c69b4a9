"""Tests of localgrad.callbacks.BlockSummaries."""

import glob
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import localgrad
from localgrad.callbacks import BlockSummaries, GreedySchedule


def _scalars(directory):
    """{tag: {step: value}} of every scalar in a directory's event files."""
    found = {}
    for path in glob.glob(os.path.join(directory, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                scalar = float(tf.make_ndarray(value.tensor))
                found.setdefault(value.tag, {})[event.step] = scalar
    return found


def test_writes_block_learning_rates_and_throughput(tmp_path):
    # An MLP: the summaries are tested, not convolutions.
    network = localgrad.models.build("mlp", (8, 8, 1), 10, width=0.0625)
    model = localgrad.GreedyModel(network, num_blocks=2, heads="linear")
    schedule = keras.optimizers.schedules.CosineDecay(0.1, decay_steps=4)
    model.compile(
        optimizer=keras.optimizers.SGD(schedule),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 10, 32)
    summaries = BlockSummaries(str(tmp_path), examples_per_epoch=32)
    # Sequential: block 0 trains in epoch 0 (2 steps), block 1 in epoch 1.
    history = model.fit(
        x,
        y,
        batch_size=16,
        epochs=2,
        verbose=0,
        callbacks=[GreedySchedule("sequential", verbose=0), summaries],
    )
    scalars = _scalars(str(tmp_path / "train"))
    # cos decay over 4 steps: after 2 steps 0.05, after 0 steps 0.1.
    assert scalars["epoch_block_0_learning_rate"][0] == pytest.approx(0.05)
    assert scalars["epoch_block_1_learning_rate"][0] == pytest.approx(0.1)
    assert scalars["epoch_block_1_learning_rate"][1] == pytest.approx(0.05)
    throughput = scalars["epoch_examples_per_second"]
    assert sorted(throughput) == [0, 1] and min(throughput.values()) > 0
    np.testing.assert_allclose(
        history.history["examples_per_second"],
        [throughput[0], throughput[1]],
        rtol=1e-5,
    )


def test_needs_a_positive_epoch_size():
    with pytest.raises(ValueError, match="examples_per_epoch"):
        BlockSummaries("/tmp/unused", examples_per_epoch=0)
