import math
import os

import pytest
from absl import flags as absl_flags
from ml_collections import config_flags

from localgrad import train_config, train_lib
from localgrad.configs import DIRECTORY as SHIPPED

CONFIGS = os.path.join(SHIPPED, "paper")


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
        if name.endswith("_associated.py") or name.startswith("_"):
            continue  # AL's own recipe: tests/associated_train_test.py.
        source = open(os.path.join(CONFIGS, name)).read()
        dataset, network = name[: -len(".py")].rsplit("_", 1)
        dataset = {"imagenet": "imagenet2012"}.get(dataset, dataset)
        assert f'paper_recipe("{dataset}", "{network}", variant)' in source


def test_unknown_recipe_names_the_known_ones():
    with pytest.raises(ValueError, match="cifar10, tiny_imagenet"):
        train_config.paper_recipe("mnist", "mlp", "backprop")


def test_sequential_runs_last_the_schedule_epochs():
    config = train_config.default_config()
    config.schedule, config.num_blocks = "sequential", 4
    config.e1, config.e2 = 2.0, 1.0  # 2 + 3 + 4 + 5 = 14 epochs.
    with pytest.raises(ValueError, match="--config.epochs=14"):
        train_config.check_config(config)
    config.epochs = 14
    train_config.check_config(config)
    config.schedule, config.laps = "multilap", 3  # Same budget in laps.
    train_config.check_config(config)
    assert train_config.schedule_epochs(4, 50, 10) == 260


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"laps": 2}, "laps=2 is for schedule='multilap'"),
        ({"schedule": "multilap", "laps": 0}, "laps must be a positive"),
        ({"e1": 0.0}, "e1 .* must be > 0"),
        ({"e2": -1.0}, "e2"),
        ({"schedule": "sequential", "e1": 0.3}, "not a whole number"),
    ],
)
def test_bad_schedule_fields(fields, message):
    config = train_config.default_config()
    config.update(fields)
    with pytest.raises(ValueError, match=message):
        train_config.check_config(config)


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


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"transport_tau": 1.0, "uzawa_step": 1.0}, "set one of them"),
        ({"transport_varying": True}, "set transport_tau too"),
        ({"uzawa_every": 50}, "set uzawa_step too"),
        ({"transport_tau": 0.0}, "transport_tau must be > 0"),
        ({"transport_tau": float("nan")}, "transport_tau must be > 0"),
        ({"uzawa_step": -1.0}, "uzawa_step must be a number > 0"),
        ({"uzawa_step": 1.0, "uzawa_every": 0}, "uzawa_every must be a"),
    ],
)
def test_bad_transport_fields(fields, message):
    config = train_config.default_config()
    config.update(fields)
    with pytest.raises(ValueError, match=message):
        train_config.check_config(config)


@pytest.mark.parametrize(
    "flags, expected",
    [
        (
            ["--config.transport_tau=1", "--config.transport_varying=true"],
            {"tau": 1.0, "varying": True, "uzawa_step": None},
        ),
        (
            ["--config.uzawa_step=1", "--config.uzawa_every=50"],
            {"tau": None, "uzawa_step": 1.0, "uzawa_every": 50},
        ),
        (["--config.transport_tau=inf"], {"tau": math.inf}),
    ],
)
def test_transport_flags_make_the_transport(flags, expected):
    argv = [
        "train.py",
        "--config=" + os.path.join(CONFIGS, "..", "tiny.py"),
        *flags,
    ]
    values = absl_flags.FlagValues()
    config_flags.DEFINE_config_file("config", flag_values=values, sys_argv=argv)
    values(argv)
    config = values.config
    train_config.check_config(config)
    transport = train_lib._transport(config)
    for name, value in expected.items():
        assert transport.get_config()[name] == value
    config.transport_tau, config.uzawa_step = None, None
    config.transport_varying, config.uzawa_every = False, None
    assert train_lib._transport(config) is None


def test_a_cluster_of_host_port_addresses_is_accepted():
    config = train_config.default_config()
    config.cluster = "host0:2222, [::1]:2223"
    config.schedule = "pipelined"
    train_config.check_config(config)  # No connection is made here.
