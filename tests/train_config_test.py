import os

import pytest

from localgrad import train_config

CONFIGS = os.path.join(os.path.dirname(__file__), "..", "configs", "paper")


@pytest.mark.parametrize("dataset", sorted(train_config.PAPER_RECIPES))
def test_paper_recipe_sets_the_published_set_up(dataset):
    config = train_config.paper_recipe(dataset, "resnet50", "dgl_k4")
    train_config.check_config(config)
    for field, value in train_config.PAPER_RECIPES[dataset].items():
        assert config[field] == value
    assert (config.model, config.width) == ("resnet50", 1.0)
    assert (config.optimizer, config.momentum) == ("sgd", 0.9)
    assert (config.method, config.num_blocks) == ("dgl", 4)


def test_every_paper_config_names_its_network_and_data():
    for name in sorted(os.listdir(CONFIGS)):
        if name.endswith("_associated.py"):
            continue  # AL's own recipe: tests/associated_train_test.py.
        source = open(os.path.join(CONFIGS, name)).read()
        dataset, network = name[: -len(".py")].rsplit("_", 1)
        dataset = {"imagenet": "imagenet2012"}.get(dataset, dataset)
        assert f'paper_recipe("{dataset}", "{network}", variant)' in source


def test_unknown_recipe_names_the_known_ones():
    with pytest.raises(ValueError, match="cifar10, tiny_imagenet"):
        train_config.paper_recipe("mnist", "mlp", "backprop")
