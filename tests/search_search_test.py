"""End-to-end tests of `Search` on a small real data set (digits)."""

import glob
import json
import logging
import os
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

import localgrad
from localgrad.models import ConvBNReLU
from localgrad.search import Search, read_decoupling

SETTINGS = dict(
    heads=("linear", "light1"),
    head_width=0.05,
    batch_size=32,
    warmup_steps=12,
    memory_size=3,
    meta_iterations=6,
    inner_steps=2,
    jit_compile=False,
)


def _search(seed=0, **overrides):
    keras.utils.set_random_seed(seed)
    units = [
        ConvBNReLU(4, name="unit_00"),
        ConvBNReLU(8, pool_first=True, name="unit_01"),
        ConvBNReLU(8, name="unit_02"),
    ]
    classifier = keras.Sequential(
        [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10)],
        name="classifier",
    )
    network = localgrad.Network(
        units, classifier, (8, 8, 1), architecture="tiny_cnn"
    )
    return Search(network, **dict(SETTINGS, **overrides))


@pytest.fixture(scope="module")
def digits():
    return localgrad.data.load_arrays("digits", "train")


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture(scope="module")
def finished(digits, tmp_path_factory):
    """The reference search, with the absl records its run logged.

    The search logs through absl: its logger's level is global state that
    another test (or the user's --verbosity) may have changed.
    """
    workdir = str(tmp_path_factory.mktemp("search"))
    search = _search()
    logger = logging.getLogger("absl")
    level, handler = logger.level, _Records()
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        result = search.run(*digits, workdir=workdir, log_every=2)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return search, result, workdir, handler.records


def _state(search):
    snapshots = [search.memory[i] for i in range(len(search.memory))]
    return dict(
        alpha=search.alpha.numpy(),
        beta=search.beta.numpy(),
        optimizer=[np.asarray(v) for v in search.meta_optimizer.variables],
        steps=[s.step for s in snapshots],
        arrays=[a for s in snapshots for part in s.state for a in part],
        meta_iteration=search.meta_iteration,
    )


def test_search_moves_alpha_and_beta_away_from_uniform(finished):
    search, result, _, _ = finished
    assert search.meta_iteration == 6
    assert np.abs(result.alpha_softmax[:, 0] - 0.5).max() > 1e-3
    assert np.abs(result.beta_softmax - 0.5).max() > 1e-3
    # Every ordinary step moved a snapshot one step on.
    assert sum(search.memory.steps) == 4 + 8 + 12 + 6
    assert [h["meta_iteration"] for h in result.history] == [2, 4, 6]
    assert all(np.isfinite(h["objective"]) for h in result.history)


def test_search_writes_its_artefacts(finished):
    search, result, workdir, _ = finished
    found = read_decoupling(
        os.path.join(workdir, "decoupling.json"), search.network
    )
    for k in (1, 2, 3):
        assert found.decoupling(k) == result.decoupling(k)
    assert os.path.getsize(os.path.join(workdir, "alpha_beta.png")) > 1000
    with open(os.path.join(workdir, "search_history.json")) as file:
        assert len(json.load(file)) == 3
    tags = set()
    for path in glob.glob(os.path.join(workdir, "tensorboard", "events.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    assert {"search/alpha_beta", "search/objective", "warmup/loss"} <= tags


class Crash(Exception):
    """Stands in for a kill."""


def _crash_after(search, name, calls):
    original = getattr(search, name) if hasattr(search, name) else None
    count = {"n": 0}

    def crashing(*args, **kwargs):
        count["n"] += 1
        if count["n"] > calls:
            raise Crash(name)
        return original(*args, **kwargs)

    return crashing


def test_resumed_search_reaches_the_uninterrupted_state(
    finished, digits, tmp_path
):
    reference = _state(finished[0])
    workdir = str(tmp_path)
    # A kill in the warm-up, after the first snapshot (step 4) ...
    search = _search()
    search.steps.relaxed_step = _crash_after(search.steps, "relaxed_step", 6)
    with pytest.raises(Crash):
        search.run(*digits, workdir=workdir, log_every=2)
    # ... then one in the meta-iterations: iterations 0-2 ran, the
    # checkpoint after iteration 2 holds, iteration 3 crashes.
    search = _search(seed=1)  # Other initial weights: all must be restored.
    search._meta_iteration = _crash_after(search, "_meta_iteration", 3)
    with pytest.raises(Crash):
        search.run(*digits, workdir=workdir, log_every=2)
    search = _search(seed=2)
    search.run(*digits, workdir=workdir, log_every=2)
    resumed = _state(search)
    assert resumed["steps"] == reference["steps"]
    assert resumed["meta_iteration"] == reference["meta_iteration"]
    np.testing.assert_array_equal(resumed["alpha"], reference["alpha"])
    np.testing.assert_array_equal(resumed["beta"], reference["beta"])
    for a, b in zip(resumed["optimizer"], reference["optimizer"]):
        np.testing.assert_array_equal(a, b)
    assert len(resumed["arrays"]) == len(reference["arrays"])
    for a, b in zip(resumed["arrays"], reference["arrays"]):
        np.testing.assert_array_equal(a, b)


def test_a_checkpoint_of_another_search_is_refused(finished, digits):
    _, _, workdir, _ = finished
    search = _search(inner_steps=3)
    with pytest.raises(ValueError, match="inner_steps.*new workdir"):
        search.run(*digits, workdir=workdir)


def test_bad_settings_and_data_are_refused(digits):
    with pytest.raises(ValueError, match="inner_steps"):
        _search(inner_steps=0)
    with pytest.raises(ValueError, match="validation_fraction"):
        _search(validation_fraction=1.0)
    x, y = digits
    with pytest.raises(ValueError, match="input shape"):
        _search().run(x[:, :4], y)


def test_first_calls_of_the_compiled_steps_are_announced_and_timed(
    finished,
):
    # The reference search's own run: a search of its own traces again.
    messages = [record.getMessage() for record in finished[3]]
    for what in ("the relaxed step", "the first meta-iteration"):
        before = [m for m in messages if m.startswith(f"Preparing {what} (")]
        after = [
            m
            for m in messages
            if re.fullmatch(
                f"Prepared {what} in [0-9.]+ s \\(traced, compiled and "
                "run once\\).",
                m,
            )
        ]
        assert len(before) == 1 and len(after) == 1, what
        assert messages.index(before[0]) < messages.index(after[0])
    assert "no XLA" in " ".join(messages)
    assert "backward pass (second order)" in " ".join(messages)
