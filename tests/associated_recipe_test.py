"""The AL paper's recipe and its configs in localgrad/configs/paper/."""

import glob
import importlib.util
import os

import keras
import numpy as np
import pytest

import localgrad
from localgrad import models, train_config, train_setup
from localgrad.associated import recipe
from localgrad.configs import DIRECTORY as SHIPPED
from localgrad.data import catalog

PAPER = os.path.join(SHIPPED, "paper")
AL_CONFIGS = sorted(glob.glob(os.path.join(PAPER, "*_associated.py")))
# A small image keeps the full-width networks' bridges small.
SMALL_IMAGE = 8


def _module(path):
    spec = importlib.util.spec_from_file_location("config_module", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_there_is_a_config_per_published_experiment():
    names = {os.path.basename(path) for path in AL_CONFIGS}
    assert names == {
        f"{dataset}_{model}_associated.py"
        for dataset, model in recipe.LABEL_WIDTHS
    }


@pytest.mark.parametrize(
    "path", AL_CONFIGS, ids=[os.path.basename(p) for p in AL_CONFIGS]
)
def test_every_al_paper_config_loads_and_builds(path):
    module = _module(path)
    doc = " ".join(module.__doc__.split())
    name = os.path.basename(path)[: -len(".py")]
    assert f"localgrad-train --config=paper/{name}" in doc
    assert "Published" in doc or "Compare with the" in doc
    assert module.get_config().method == "associated"
    for variant in recipe.VARIANTS:
        config = module.get_config(variant)
        train_config.check_config(config)
        assert config.method == variant
        assert (config.optimizer, config.batch_size) == ("adam", 32)
        assert config.lr_decay_epochs == (80, 120, 160, 180)
        assert config.lr_decay_factors == (0.1, 0.1, 0.1, 0.5)
        info = catalog.info(config.dataset)
        shape = (SMALL_IMAGE, SMALL_IMAGE) + info.input_shape[2:]
        keras.utils.set_random_seed(0)
        network = models.build(
            config.model, shape, info.num_classes, width=config.width
        )
        model = train_setup.build_greedy_model(
            network,
            config.method,
            num_blocks=config.num_blocks,
            boundaries=tuple(config.boundaries) or None,
            label_width=config.label_width,
            decoder_learning_rate_factor=config.decoder_learning_rate_factor,
        )
        assert model.num_blocks == config.num_blocks
        scores = model.predict(np.zeros((2,) + shape, "float32"), verbose=0)
        assert scores.shape == (2, info.num_classes)
        if variant == "associated":
            assert isinstance(model, localgrad.AssociatedModel)
            assert model.num_blocks == 4
            assert model.label_width == config.label_width


@pytest.mark.parametrize(
    "dataset, model, width, rate, boundaries",
    [
        ("cifar10", "cnn_al", 256, 1e-4, ()),
        ("cifar10", "vgg_al", 300, 1e-4, ()),
        ("cifar10", "resnet20", 300, 1e-3, (1, 4, 7)),
        ("cifar100", "resnet32", 500, 1e-3, (1, 6, 11)),
        ("mnist", "mlp", 1024, 1e-4, ()),
    ],
)
def test_recipe_has_the_published_set_up(
    dataset, model, width, rate, boundaries
):
    config = recipe.paper_recipe(dataset, model)
    assert config.label_width == width
    assert config.learning_rate == rate
    assert tuple(config.boundaries) == boundaries
    assert config.decoder_learning_rate_factor == 2.0
    assert config.epochs == 200
    backprop = recipe.paper_recipe(dataset, model, "backprop")
    assert (backprop.num_blocks, backprop.label_width) == (1, None)
    assert backprop.learning_rate == rate


def test_recipe_schedule_decays_at_the_published_shares():
    # 10 steps per epoch: the decays fall at steps 800, 1200, 1600, 1800.
    config = recipe.paper_recipe("cifar10", "cnn_al")
    steps_per_epoch = 10
    lr = train_setup.learning_rate_schedule(
        config.lr_schedule,
        config.learning_rate,
        config.epochs * steps_per_epoch,
        decay_boundaries=[e * steps_per_epoch for e in config.lr_decay_epochs],
        decay_factor=config.lr_decay_factors,
    )
    rates = [float(lr(step)) for step in (800, 801, 1201, 1601, 1801)]
    np.testing.assert_allclose(rates, [1e-4, 1e-5, 1e-6, 1e-7, 5e-8], rtol=1e-5)


def test_recipe_rejects_experiments_the_paper_did_not_run():
    with pytest.raises(ValueError, match="cifar10/vgg_al"):
        recipe.paper_recipe("cifar10", "vgg19")
    with pytest.raises(ValueError, match="associated, backprop"):
        recipe.paper_recipe("cifar10", "vgg_al", "dgl_k4")
