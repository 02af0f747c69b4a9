"""Tests of localgrad.binaries: the real binaries refuse bad input in one
line, with status 2; the traceback only when asked; bugs keep theirs."""

import os
import re
import subprocess
import sys

import in_process
import numpy as np
import pytest
from absl import app

from localgrad import binaries

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
# TensorFlow's and absl's own log lines (e.g. "no CUDA drivers" at import)
# are not the binary's output.
_LOG_LINE = re.compile(
    r"^([IWEF]\d{4} \d\d:\d\d:\d\d"
    r"|WARNING: All log messages before absl::InitializeLog"
    r"|To enable the following instructions)"
)


def _run_binary(name, *args, env=None):
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "bin", name), *args],
        env=dict(os.environ, **(env or {})),
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [
        line
        for line in result.stderr.splitlines()
        if line.strip() and not _LOG_LINE.match(line)
    ]
    return result.returncode, lines


# One real process per command (its bin/ entry point, TensorFlow's import
# and absl's log lines included); the other refusals run the command's
# main in this process (tests/in_process.py), where stderr holds only
# what the command writes.
@pytest.mark.parametrize(
    "binary, args, expected",
    [
        (
            "train.py",
            ["--config=tiny", "--config.schedule=zigzag"],
            "Unknown schedule 'zigzag'; use one of",
        ),
        (
            "search.py",
            ["--config=search/tiny", "--config.meta_iterations=-1"],
            "meta_iterations must be >= 0",
        ),
        ("export.py", ["--output=unused"], "no trained model in"),
    ],
)
def test_bad_input_is_one_line_and_status_2(tmp_path, binary, args, expected):
    workdir = f"--workdir={tmp_path / 'run'}"
    status, lines = _run_binary(binary, *args, workdir)
    assert status == binaries.EXIT_BAD_INPUT
    assert len(lines) == 1, lines  # No traceback either.
    assert lines[0].startswith("error: ")
    assert expected in lines[0]
    if binary == "export.py":  # It names the workdir and what to run.
        assert f"error: no trained model in {tmp_path / 'run'}" in lines[0]
        assert "localgrad-train" in lines[0]


def test_an_unknown_field_is_one_line_and_status_2(
    tmp_path, capsys, monkeypatch
):
    status, _, lines = in_process.run(
        "train",
        "--config=tiny",
        "--config.epoch=3",
        f"--workdir={tmp_path / 'run'}",
        capsys=capsys,
        monkeypatch=monkeypatch,
    )
    assert status == binaries.EXIT_BAD_INPUT
    assert len(lines) == 1, lines  # No traceback either.
    assert lines[0].startswith("error: ")
    assert "Unknown config field 'epoch'. Did you mean \"epochs\"" in lines[0]


def test_verbosity_1_adds_the_traceback(tmp_path, capsys, monkeypatch):
    status, _, lines = in_process.run(
        "train",
        "--config=tiny",
        "--config.schedule=zigzag",
        f"--workdir={tmp_path}",
        "--verbosity=1",
        capsys=capsys,
        monkeypatch=monkeypatch,
    )
    assert status == binaries.EXIT_BAD_INPUT
    assert lines[0] == "Traceback (most recent call last):"
    assert any("check_config" in line for line in lines)
    assert lines[-1].startswith("error: Unknown schedule 'zigzag'")


def test_environment_switch_adds_the_traceback(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(binaries.TRACEBACK_VARIABLE, "1")
    status, _, lines = in_process.run(
        "export",
        f"--workdir={tmp_path}",
        "--output=unused",
        capsys=capsys,
        monkeypatch=monkeypatch,
    )
    assert status == binaries.EXIT_BAD_INPUT
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[-1].startswith("error: no trained model in")


def _run(main, capsys):
    """binaries.run in this process; returns (exit status, stderr lines)."""
    with pytest.raises(SystemExit) as exit_info:
        binaries.run(main, argv=["binary"])
    return exit_info.value.code, capsys.readouterr().err.splitlines()


def test_path_and_usage_errors_are_refused(capsys):
    def missing_file(argv):
        open("/no/such/file")

    status, lines = _run(missing_file, capsys)
    assert status == 2
    assert lines == [
        "error: [Errno 2] No such file or directory: '/no/such/file'"
    ]

    def usage(argv):
        raise app.UsageError("--early_exits=a: give 'all'.")

    assert _run(usage, capsys) == (2, ["error: --early_exits=a: give 'all'."])


def test_a_check_in_localgrad_is_refused(capsys):
    from localgrad import train_config

    def bad_config(argv):
        config = train_config.default_config()
        config.method = "dni"
        train_config.check_config(config)

    status, lines = _run(bad_config, capsys)
    assert status == 2
    assert len(lines) == 1 and lines[0].startswith("error: Unknown method")


def test_unexpected_errors_keep_their_traceback():
    def bug(argv):
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError, match="a bug"):
        binaries.run(bug, argv=["binary"])

    def numpy_value_error(argv):  # Not a check of localgrad's.
        np.zeros(3).reshape(2)

    with pytest.raises(ValueError, match="reshape"):
        binaries.run(numpy_value_error, argv=["binary"])


def test_one_line_keeps_the_last_line_of_an_embedded_traceback():
    message = (
        "flag --config=x.py:v: Error whilst parsing config file:\n\n"
        "  Traceback (most recent call last):\n    File ...\n"
        "  ValueError: Unknown variant 'v'.\n"
    )
    assert binaries.one_line(message) == (
        "flag --config=x.py:v: Error whilst parsing config file: "
        "ValueError: Unknown variant 'v'."
    )
    assert binaries.one_line("a\n  b\n") == "a b"


def test_worker_refuses_a_bad_cluster_address_in_one_line():
    status, lines = _run_binary("worker.py", "--cluster=nohost", "--task=0")
    assert status == binaries.EXIT_BAD_INPUT
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ") and "nohost" in lines[0]


def test_help_prints_the_commands_doc_and_exits_0(capsys):
    def main(argv):
        raise AssertionError("--help must not run main")

    with pytest.raises(SystemExit) as exit_info:
        binaries.run(main, argv=["localgrad-train", "--help"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith(__doc__.strip())
