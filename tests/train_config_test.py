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
        source = open(os.path.join(CONFIGS, name)).read()
        dataset, network = name[: -len(".py")].rsplit("_", 1)
        dataset = {"imagenet": "imagenet2012"}.get(dataset, dataset)
        assert f'paper_recipe("{dataset}", "{network}", variant)' in source


def test_unknown_recipe_names_the_known_ones():
    with pytest.raises(ValueError, match="cifar10, tiny_imagenet"):
        train_config.paper_recipe("mnist", "mlp", "backprop")


@pytest.mark.parametrize(
    "cluster, timeout, message",
    [
        ("host0:2222,host1", 60.0, r"entry 1 \('host1'\) has no port"),
        ("host0:2222,host0:2222", 60.0, "given twice"),
        ("host0:99999", 60.0, "invalid port"),
        ("host0:2222", 0.0, "cluster_timeout must be a positive number"),
    ],
)
def test_a_bad_cluster_is_refused_before_anything_runs(
    cluster, timeout, message
):
    config = train_config.default_config()
    config.cluster = cluster
    config.cluster_timeout = timeout
    with pytest.raises(ValueError, match=message):
        train_config.check_config(config)


def test_a_cluster_of_host_port_addresses_is_accepted():
    config = train_config.default_config()
    config.cluster = "host0:2222, [::1]:2223"
    config.schedule = "pipelined"
    train_config.check_config(config)  # No connection is made here.
