"""The search runs without Grappler's rewrites, and restores the option."""

import importlib.util
import os

import pytest
import tensorflow as tf

from localgrad import configs
from localgrad.search import search_lib
from localgrad.search.graph_rewrites import graph_rewrites

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPTION = "disable_meta_optimizer"


def _disabled():
    return tf.config.optimizer.get_experimental_options().get(OPTION, False)


@pytest.mark.parametrize("enabled", [False, True])
def test_the_option_holds_inside_and_is_restored_after(enabled):
    before = _disabled()
    with graph_rewrites(enabled):
        assert _disabled() is (not enabled)
    assert _disabled() == before


def _tiny_config():
    path = configs.resolve("search/tiny")
    spec = importlib.util.spec_from_file_location("tiny_search", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


@pytest.mark.parametrize("rewrites", [False, True])
def test_search_lib_runs_the_search_as_the_config_says(
    rewrites, tmp_path, monkeypatch
):
    seen = []

    class Stop(Exception):
        pass

    def run(self, *args, **kwargs):
        seen.append(_disabled())
        raise Stop

    monkeypatch.setattr(search_lib.Search, "run", run)
    config = _tiny_config()
    config.graph_rewrites = rewrites
    before = _disabled()
    with pytest.raises(Stop):
        search_lib.run(config, str(tmp_path))
    assert seen == [not rewrites]
    assert _disabled() == before
