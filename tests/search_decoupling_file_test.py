"""Tests of decoupling.json: round trip, validation, and training from it."""

import json

import numpy as np
import pytest

import localgrad
from localgrad.search import (
    SearchResult,
    discretize,
    read_decoupling,
    write_decoupling,
)

HEADS = ("linear", "mlp")


@pytest.fixture(scope="module")
def network():
    return localgrad.models.build("mlp", (8, 8, 1), 10, width=0.02)


def _result(network):
    rng = np.random.default_rng(0)
    rows = network.num_units - 1
    return SearchResult(
        alpha=rng.normal(size=(rows, 2)),
        beta=rng.normal(size=(rows, len(HEADS))),
        head_names=HEADS,
        architecture=network.architecture,
        unit_names=tuple(network.unit_names),
        settings={"meta_iterations": 3},
    )


@pytest.fixture
def path(tmp_path, network):
    path = str(tmp_path / "decoupling.json")
    write_decoupling(path, _result(network))
    return path


def test_file_round_trips_every_decoupling(path, network):
    result = _result(network)
    found = read_decoupling(path, network)
    np.testing.assert_allclose(found.alpha_softmax, result.alpha_softmax)
    np.testing.assert_allclose(found.beta_softmax, result.beta_softmax)
    assert found.head_names == HEADS
    assert found.search == {"meta_iterations": 3}
    for k in range(1, network.num_units + 1):
        assert found.decoupling(k) == discretize(result, k)
    with pytest.raises(ValueError, match="K = 1..4"):
        found.decoupling(5)


def test_greedy_model_trains_the_decoupling_in_the_file(path, network):
    boundaries, heads = read_decoupling(path).decoupling(3)
    model = localgrad.GreedyModel.from_decoupling(network, path, 3)
    assert model.boundaries == boundaries
    assert [type(h).__name__ for h in model.heads] == [
        {"linear": "LinearHead", "mlp": "MLPHead"}[h] for h in heads
    ]


def test_heads_are_built_at_the_width_they_were_searched_at(path, network):
    _rewrite(path, lambda content: content["search"].update(head_width=0.5))
    model = localgrad.GreedyModel.from_decoupling(network, path, 3)
    assert model.head_width == 0.5
    wider = localgrad.GreedyModel.from_decoupling(
        network, path, 3, head_width=1.0
    )
    assert wider.head_width == 1.0


def _rewrite(path, change):
    with open(path) as file:
        content = json.load(file)
    change(content)
    with open(path, "w") as file:
        json.dump(content, file)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c.update(version=99), "version 99"),
        (lambda c: c.pop("beta_softmax"), "lacks the keys"),
        (lambda c: c.update(alpha_softmax=[[0.5, 0.5]]), "3 x 2 array"),
        (lambda c: c["beta_softmax"][0].append(0.1), "3 x 2 array"),
        (lambda c: c.update(unit_names=["a"]), "4 strings"),
        (lambda c: c["decouplings"].pop("3"), "lacks K = 3"),
        (
            lambda c: c["decouplings"]["2"].update(heads=["light9"]),
            "K = 2 must have",
        ),
        (lambda c: c.update(format="other"), "not a localgrad decoupling"),
    ],
)
def test_damaged_files_are_refused(path, change, message):
    _rewrite(path, change)
    with pytest.raises(ValueError, match=message):
        read_decoupling(path)


def test_corrupt_and_missing_files_are_refused(path, tmp_path):
    with open(path, "a") as file:
        file.write("}{")
    with pytest.raises(ValueError, match="not valid JSON.*Re-run"):
        read_decoupling(path)
    with pytest.raises(ValueError, match="run localgrad-search"):
        read_decoupling(str(tmp_path / "nothing.json"))


def test_files_for_other_networks_are_refused(path):
    wider = localgrad.models.build("mlp", (8, 8, 1), 10, width=0.03)
    assert read_decoupling(path, wider).num_units == 4  # Same units: fine.
    vgg = localgrad.models.build("vgg11", (8, 8, 1), 10, width=0.05)
    with pytest.raises(ValueError, match="searched on 'mlp'.*'vgg11'"):
        read_decoupling(path, vgg)
    fewer = localgrad.Network(
        wider.units[:3], wider.classifier, (8, 8, 1), architecture="mlp"
    )
    with pytest.raises(ValueError, match="4 units.*3 units"):
        localgrad.GreedyModel.from_decoupling(fewer, path, 2)
