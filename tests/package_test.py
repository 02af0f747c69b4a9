"""localgrad installed from its wheel, as on a fresh machine.

Builds the wheel offline from a copy of the checkout (this environment's
setuptools, no build isolation), installs it into a new virtual
environment that reuses this one's TensorFlow (`--system-site-packages`),
and runs the installed commands from a directory outside the checkout.
"""

import glob
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from localgrad import binaries

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
# What the wheel is built from, besides localgrad/.
SHIPPED_FILES = ("pyproject.toml", "LICENSE", "README.md")
# A few steps on scikit-learn's digits: no download, seconds.
TINY_RUN = (
    "--config.dataset=digits",
    "--config.width=0.125",
    "--config.num_blocks=2",
    "--config.epochs=1",
    "--config.steps_per_epoch=2",
    "--config.batch_size=32",
    "--config.eval_batch_size=512",
    "--config.precise_bn_batches=2",  # Not 50 batches for 2 steps.
)


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A virtual environment with localgrad installed from its wheel."""
    tmp = tmp_path_factory.mktemp("package")
    source = tmp / "source"
    shutil.copytree(
        os.path.join(ROOT, "localgrad"),
        source / "localgrad",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    for name in SHIPPED_FILES:
        shutil.copy(os.path.join(ROOT, name), source)
    _check(
        sys.executable, "-m", "pip", "wheel", "--no-deps",
        "--no-build-isolation", "--no-index", "-q", "-w", tmp / "wheels",
        source,
    )  # fmt: skip
    (wheel,) = glob.glob(str(tmp / "wheels" / "localgrad-*.whl"))
    env = tmp / "venv"
    _check(sys.executable, "-m", "venv", "--system-site-packages", env)
    _check(
        env / "bin" / "python", "-m", "pip", "install", "--no-deps",
        "--no-index", "--ignore-installed", "-q", wheel,
    )  # fmt: skip
    return env


def _environment():
    # The checkout must not be importable: no PYTHONPATH pointing at it.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _run(*command, cwd=None):
    return subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env=_environment(),
    )


def _check(*command, cwd=None):
    result = _run(*command, cwd=cwd)
    assert result.returncode == 0, (command, result.stdout, result.stderr)
    return result


def test_the_installed_package_is_the_wheels(venv, tmp_path):
    # Where `import localgrad` would load it from, without paying for the
    # TensorFlow import (the commands below do import it).
    code = "import importlib.util as u; print(u.find_spec('localgrad').origin)"
    result = _check(venv / "bin" / "python", "-c", code, cwd=tmp_path)
    path = result.stdout.strip().splitlines()[-1]
    assert path.startswith(str(venv)), path
    shipped = os.path.dirname(path)
    for name in ("configs/quickstart.py", "configs/paper/cifar10_vgg19.py"):
        assert os.path.exists(os.path.join(shipped, name)), name
    assert glob.glob(
        os.path.join(shipped, "search", "published_decouplings", "*.json")
    )


def test_train_runs_a_shipped_config_by_name(venv, tmp_path):
    workdir = tmp_path / "run"
    _check(
        venv / "bin" / "localgrad-train",
        "--config=quickstart",
        f"--workdir={workdir}",
        *TINY_RUN,
        cwd=tmp_path,
    )
    assert (workdir / "metrics.json").exists()
    assert (workdir / "model.keras").exists()


HELPED = ("localgrad-worker", "localgrad-export", "localgrad-search")
# Commands that only read their flags: one process of the venv's Python
# imports localgrad (TensorFlow's ~5 CPU s) once, and each installed
# script then runs in a fork of it, from outside the checkout, as its own
# process runs it; its stdout goes to <i>.out. A script's own start (a new
# process, its #! line) is run by localgrad-train's tests here.
RUN_IN_FORKS = {
    "show_config": (
        "localgrad-train",
        "--config=fashion_mnist:dgl",
        "--config.num_blocks=2",
        "--show_config",
    ),
    **{command: (command, "--help") for command in HELPED},
}
_FORK_EACH = """
import json, os, runpy, sys, traceback
import localgrad
for i, (script, *args) in enumerate(json.loads(sys.argv[1])):
    pid = os.fork()
    if pid == 0:
        os.dup2(os.open(f"{i}.out", os.O_WRONLY | os.O_CREAT, 0o644), 1)
        sys.argv = [script, *args]
        try:
            runpy.run_path(script, run_name="__main__")
            status = 0
        except SystemExit as exit:
            status = exit.code if isinstance(exit.code, int) else 1
            status = 0 if exit.code is None else status
        except BaseException:
            traceback.print_exc()
            status = 1
        sys.stdout.flush()
        os._exit(status)
    status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    print(f"exit status {i}: {status}")
"""


@pytest.fixture(scope="module")
def forked(venv, tmp_path_factory):
    """{key of RUN_IN_FORKS: (exit status, stdout)}."""
    tmp = tmp_path_factory.mktemp("forks")
    commands = [
        [str(venv / "bin" / command), *args]
        for command, *args in RUN_IN_FORKS.values()
    ]
    result = _check(
        venv / "bin" / "python", "-c", _FORK_EACH, json.dumps(commands),
        cwd=tmp,
    )  # fmt: skip
    statuses = re.findall(r"^exit status (\d+): (-?\d+)$", result.stdout, re.M)
    assert [int(i) for i, _ in statuses] == list(range(len(commands)))
    return {
        key: (int(status), (tmp / f"{i}.out").read_text())
        for (key, (i, status)) in zip(RUN_IN_FORKS, statuses)
    }


def test_show_config_needs_no_workdir(forked):
    status, stdout = forked["show_config"]
    assert status == 0, stdout
    (row,) = [line for line in stdout.splitlines() if " num_blocks " in line]
    assert row.split()[:4] == ["*", "num_blocks", "2", "4"]


@pytest.mark.parametrize("command", HELPED)
def test_help_exits_0_and_names_the_flags(forked, command):
    status, stdout = forked[command]
    assert status == 0, stdout
    assert stdout.startswith(f"`{command}`")
    assert "--" in stdout.split("Flags:")[1]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--config=nonexistent"], "flag --config=nonexistent: Unknown config"),
        # A check in the installed localgrad/ is still a user error.
        (["--config=tiny", "--config.schedule=zigzag"], "Unknown schedule"),
    ],
)
def test_bad_input_is_refused_in_one_line(venv, tmp_path, args, message):
    result = _run(
        venv / "bin" / "localgrad-train",
        *args,
        f"--workdir={tmp_path}",
        cwd=tmp_path,
    )
    assert result.returncode == binaries.EXIT_BAD_INPUT, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {message}"), last
    assert "Traceback" not in result.stderr
