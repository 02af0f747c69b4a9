"""Every refusal in one line, and only refusals (issue: nothing silently
wrong): the commands print a `localgrad.UserError` (and a full disk) in one
line with status 2, a lost worker in one line with status 75, and keep the
traceback of anything else, a `ValueError` inside localgrad included.

The commands' mains run in this process through `localgrad.binaries.run`,
as the installed commands run them.
"""

import errno
import os
import socket
import sys

import pytest
import tensorflow as tf

import localgrad
from localgrad import binaries, train_config, train_lib
from localgrad.distribute.frozen_workers import FROZEN_WORKER_EXIT_CODE
from localgrad.distribute.worker import start_worker


def _run(main, capsys):
    """binaries.run in this process; returns (exit status, stderr lines)."""
    with pytest.raises(SystemExit) as exit_info:
        binaries.run(main, argv=["localgrad-train"])
    return exit_info.value.code, capsys.readouterr().err.splitlines()


def _refused(main, capsys):
    status, lines = _run(main, capsys)
    assert status == binaries.EXIT_BAD_INPUT, lines
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def test_a_negative_seed_is_refused(capsys):
    config = train_config.default_config()
    config.seed = -1
    line = _refused(lambda argv: train_config.check_config(config), capsys)
    assert line == f"error: seed must be in 0..{2**32 - 1}; got -1."


def test_digits_without_scikit_learn_is_refused(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # Not installed.
    localgrad.data.sources._digits_arrays.cache_clear()
    line = _refused(
        lambda argv: localgrad.data.load_arrays("digits", "train"), capsys
    )
    assert "needs the scikit-learn package: `pip install scikit-learn`" in (
        line
    )


def test_a_damaged_config_json_beside_checkpoints_is_refused(tmp_path, capsys):
    workdir = tmp_path / "run"
    (workdir / "checkpoints").mkdir(parents=True)
    (workdir / "checkpoints" / "epoch-0001.npz").write_bytes(b"a run's")
    (workdir / "config.json").write_text('{"model": "vgg1')  # Truncated.
    config = localgrad.configs.load("tiny")
    line = _refused(
        lambda argv: train_lib.train_and_evaluate(config, str(workdir)),
        capsys,
    )
    assert f"{workdir / 'config.json'} is damaged" in line
    assert "--config.restart=true" in line
    assert (workdir / "config.json").read_text() == '{"model": "vgg1'


def test_a_full_disk_is_refused_saying_the_run_resumes(capsys):
    def full(argv):
        raise OSError(errno.ENOSPC, "No space left on device", "/tmp/run/x")

    line = _refused(full, capsys)
    assert line.startswith("error: [Errno 28] No space left on device")
    assert "run the same command again" in line


def test_a_taken_port_is_refused_naming_it(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = _refused(
            lambda argv: start_worker(f"127.0.0.1:{port}", 0), capsys
        )
    assert line.startswith(
        f"error: Worker task 0 cannot listen on port {port}: another "
    )
    assert f"sport = :{port}" in line


def test_a_lost_worker_ends_in_one_line_with_status_75(capsys, monkeypatch):
    def end_process(status):  # binaries.run's os._exit, in this process.
        raise SystemExit(status)

    monkeypatch.setattr(binaries, "end_process", end_process)
    message = (
        "Worker task 1 at 127.0.0.1:2223 does not answer. Restart it "
        "(localgrad-worker --cluster=... --task=1) and run again."
    )

    def lost(argv):
        raise localgrad.distribute.WorkerLostError(
            message, [1], ["127.0.0.1:2223"]
        )

    assert _run(lost, capsys) == (
        FROZEN_WORKER_EXIT_CODE,
        [f"WorkerLostError: {message}"],
    )


def test_a_value_error_inside_localgrad_keeps_its_traceback():
    # Raised from a frame in localgrad's own package: before, any
    # ValueError raised there was shown as the user's mistake.
    inside = os.path.join(os.path.dirname(localgrad.__file__), "internal.py")
    code = compile("raise ValueError('an internal bug')", inside, "exec")

    def bug(argv):
        exec(code)

    with pytest.raises(ValueError, match="an internal bug"):
        binaries.run(bug, argv=["localgrad-train"])


def test_user_error_is_a_value_error_for_python_callers():
    config = train_config.default_config()
    config.method = "dni"
    with pytest.raises(ValueError) as refused:
        train_config.check_config(config)
    assert type(refused.value) is localgrad.UserError


def test_a_user_error_in_traced_code_stays_a_user_error():
    def check(x):
        if x.shape[0] != 2:
            raise localgrad.UserError("give two")
        return x

    with pytest.raises(localgrad.UserError, match="give two"):
        tf.function(check)(tf.zeros(3))
