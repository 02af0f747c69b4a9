"""Tests of decoupling_from_weights and SEDONA's published decouplings."""

import functools
import importlib.util
import os

import numpy as np
import pytest

import localgrad
from localgrad import train_config, train_setup
from localgrad.configs import DIRECTORY as SHIPPED
from localgrad.search import (
    decoupling_from_weights,
    discretize,
    published_decoupling,
    published_decoupling_path,
    read_decoupling,
    write_decoupling,
)

CONFIGS = os.path.join(SHIPPED, "paper")
ARCHITECTURES = ("vgg19", "resnet50", "resnet101", "resnet152")
UNITS = {"vgg19": 16, "resnet50": 16, "resnet101": 33, "resnet152": 50}
# The narrowest networks that keep every channel count >= 1.
TINY_WIDTH = 1 / 64


@functools.cache  # Each network is built once for the module's tests.
def _network(architecture):
    return localgrad.models.build(
        architecture, (32, 32, 3), 10, width=TINY_WIDTH
    )


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_discretizing_the_published_weights_gives_the_official_decouplings(
    architecture,
):
    net = _network(architecture)
    found = published_decoupling(architecture, network=net)
    assert found.num_units == UNITS[architecture]
    official = found.search["official_decouplings"]
    assert sorted(official) == ["2", "4", "8"]
    for k, expected in official.items():
        decoupling = (expected["boundaries"], expected["heads"])
        assert discretize(found, int(k)) == decoupling
        assert found.decoupling(int(k)) == decoupling
    # The file's decouplings for every K are localgrad's discretization.
    again = decoupling_from_weights(
        net, found.alpha_softmax, found.beta_softmax
    )
    assert again.decouplings == found.decouplings


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_published_files_record_their_provenance(architecture):
    found = published_decoupling(architecture)
    assert "github.com/mjpyeon/sedona" in found.search["source"]
    assert "d769bf9" in found.search["source"]
    assert f"sedona_outputs/{architecture}/" in found.search["source"]
    assert found.search["dataset"] == "cifar10"
    assert found.search["head_width"] == 1.0
    assert found.head_names == ("light1", "light2", "light3", "light4")
    # The rows are softmax outputs, as released.
    np.testing.assert_allclose(found.alpha_softmax.sum(axis=1), 1, atol=1e-6)
    np.testing.assert_allclose(found.beta_softmax.sum(axis=1), 1, atol=1e-6)


def test_unpublished_pairs_are_refused():
    with pytest.raises(ValueError, match="cifar10/vgg19"):
        published_decoupling_path("vgg11")
    with pytest.raises(ValueError, match="No published SEDONA"):
        published_decoupling_path("resnet50", dataset="imagenet2012")
    with pytest.raises(ValueError, match="localgrad-search"):
        train_config.paper_recipe("tiny_imagenet", "resnet101", "sedona")


def _tiny_cnn():
    return localgrad.models.build("vgg11", (16, 16, 3), 4, width=1 / 16)


def test_weights_make_a_decoupling_file_training_reads(tmp_path):
    net = _tiny_cnn()  # 8 units: 7 rows
    alpha = np.zeros((7, 2))
    alpha[:, 0] = [0.1, 0.9, 0.2, 0.8, 0.3, 0.7, 0.4]
    alpha[:, 1] = 1 - alpha[:, 0]
    beta = np.full((7, 2), 0.5)
    beta[1] = [0.2, 0.8]
    beta[3] = [0.6, 0.4]
    found = decoupling_from_weights(
        net,
        alpha,
        beta,
        candidate_heads=["light1", "linear"],
        search={"source": "by hand", "head_width": 0.25},
    )
    # By hand: the two largest a_l0 are rows 1 and 3 (0.9, 0.8): blocks
    # end after units 2 and 4, with heads argmax(beta) of those rows.
    assert found.decoupling(3) == ([2, 4], ["linear", "light1"])
    path = str(tmp_path / "decoupling.json")
    write_decoupling(path, found)
    assert read_decoupling(path, net).search["source"] == "by hand"
    model = localgrad.GreedyModel.from_decoupling(net, path, num_blocks=3)
    assert model.boundaries == [2, 4]
    assert model.head_width == 0.25


def test_bad_weights_are_refused():
    net = _tiny_cnn()
    uniform = np.full((7, 2), 0.5)
    with pytest.raises(ValueError, match="needs \\(7, 2\\)"):
        decoupling_from_weights(net, uniform[:6], np.full((6, 4), 0.25))
    with pytest.raises(ValueError, match="needs \\(7, 4\\)"):
        decoupling_from_weights(net, uniform, np.full((7, 3), 1 / 3))
    raw = np.zeros((7, 2))  # raw alpha = 0, not softmax(alpha) = 0.5
    with pytest.raises(ValueError, match="pass softmax\\(alpha\\)"):
        decoupling_from_weights(net, raw, np.full((7, 4), 0.25))


def _paper_config(architecture, variant):
    path = os.path.join(CONFIGS, f"cifar10_{architecture}.py")
    spec = importlib.util.spec_from_file_location("paper_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(variant)


@pytest.mark.parametrize(
    "architecture, num_blocks",
    [("vgg19", 4), ("vgg19", 8), ("resnet50", 2), ("resnet101", 4)]
    + [("resnet152", 4)],
)
def test_sedona_config_variants_build_the_published_decoupling(
    architecture, num_blocks
):
    config = _paper_config(architecture, "sedona")
    config.num_blocks = num_blocks  # as --config.num_blocks=K
    train_config.check_config(config)
    assert (config.method, config.width) == ("dgl", 1.0)
    assert config.head_width == 1.0
    assert os.path.isfile(config.decoupling)
    official = published_decoupling(architecture).search[
        "official_decouplings"
    ][str(num_blocks)]
    model = train_setup.build_greedy_model(
        _network(architecture),
        config.method,
        num_blocks=config.num_blocks,
        head_width=config.head_width,
        decoupling=config.decoupling,
    )
    assert model.boundaries == official["boundaries"]
    depths = [f"light{head.depth}" for head in model.heads]
    assert depths == official["heads"]
    # Published width: the light heads' last 1x1 conv has 512 channels.
    assert all(head.last_channels == 512 for head in model.heads)
