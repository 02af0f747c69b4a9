import importlib.util

import pytest

from localgrad import configs
from localgrad.search import search_config

SEARCH_CONFIGS = [n for n in configs.names() if n.startswith("search/")]


def _load(path):
    spec = importlib.util.spec_from_file_location("config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", SEARCH_CONFIGS)
def test_every_search_config_is_valid(name):
    module = _load(configs.resolve(name))
    doc = " ".join(module.__doc__.split())
    assert f"localgrad-search --config={name}" in doc
    search_config.check_search_config(module.get_config())


@pytest.mark.parametrize("model", ["vgg19", "resnet50", "resnet101"])
def test_cifar10_search_uses_the_paper_budget(model):
    config = search_config.cifar10_search_config(model)
    assert (config.model, config.dataset, config.width) == (
        model,
        "cifar10",
        1.0,
    )
    assert (config.meta_iterations, config.inner_steps) == (2000, 5)
    assert config.memory_size == 50
