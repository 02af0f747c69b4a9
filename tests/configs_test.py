"""`localgrad.configs.load` gives what the commands' `--config` flag gives."""

import pytest
from absl import flags
from ml_collections import config_flags

from localgrad import configs


@pytest.mark.parametrize(
    "spec", ["quickstart", "fashion_mnist:dgl", "paper/cifar10_vgg19:sedona"]
)
def test_load_is_what_ml_collections_loads_from_the_file(spec):
    flag_values = flags.FlagValues()
    config_flags.DEFINE_config_file("config", flag_values=flag_values)
    flag_values(["command", f"--config={configs.resolve(spec)}"])
    assert configs.load(spec).to_dict() == flag_values.config.to_dict()


def test_load_refuses_an_unknown_name():
    with pytest.raises(ValueError, match="did you mean quickstart"):
        configs.load("quickstrat")
