"""Tests of the search config, search_lib and the bin/search.py binary."""

import json
import os
import subprocess
import sys

import pytest

import localgrad
from localgrad.search import read_decoupling
from localgrad.search.search_config import (
    check_search_config,
    default_search_config,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_binary_searches_and_writes_a_decoupling_training_can_read(tmp_path):
    workdir = str(tmp_path / "search")
    command = [
        sys.executable,
        os.path.join(ROOT, "bin", "search.py"),
        "--config=search/tiny",
        "--config.meta_iterations=2",
        f"--workdir={workdir}",
    ]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "meta-iteration 2/2" in done.stderr
    network = localgrad.models.build("mlp", (8, 8, 1), 10, width=0.03)
    found = read_decoupling(os.path.join(workdir, "decoupling.json"), network)
    assert found.head_names == ("linear", "mlp")
    assert len(found.decoupling(3)[0]) == 2
    with open(os.path.join(workdir, "config.json")) as file:
        assert json.load(file)["meta_iterations"] == 2
    assert os.path.exists(os.path.join(workdir, "alpha_beta.png"))


def test_config_checks_name_the_field():
    config = default_search_config()
    config.objective = "test"
    with pytest.raises(ValueError, match="config.objective"):
        check_search_config(config)
    config = default_search_config()
    config.inner_steps = 0
    with pytest.raises(ValueError, match="config.inner_steps"):
        check_search_config(config)
    config = default_search_config()
    config.heads = ()
    with pytest.raises(ValueError, match="config.heads"):
        check_search_config(config)
