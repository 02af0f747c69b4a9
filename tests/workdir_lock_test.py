"""One run at a time in a workdir; a dead run's lock is taken over."""

import json
import os
import subprocess
import sys

import pytest

import localgrad
from localgrad import configs, train_lib
from localgrad.workdir_lock import LOCK_FILE, WorkdirInUseError, WorkdirLock

# A second process holding the lock, importing the module alone (no
# TensorFlow: a fraction of a second), until its standard input closes.
_HOLD = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("lock", sys.argv[1])
lock = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lock)
with lock.WorkdirLock(sys.argv[2]):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_a_second_run_is_refused_naming_the_first(tmp_path):
    workdir = str(tmp_path / "run")
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, localgrad.workdir_lock.__file__, workdir],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "held\n"
        config = configs.load("tiny")
        with pytest.raises(WorkdirInUseError) as refused:
            train_lib.train_and_evaluate(config, workdir)
    finally:
        holder.communicate("", timeout=60)
    message = str(refused.value)
    assert f"{workdir} is in use by another run (pid {holder.pid} " in message
    assert " since 20" in message and "give another workdir" in message
    assert os.listdir(workdir) == [LOCK_FILE]  # Nothing else was touched.
    # Released when the holder ended: the workdir is free again, and empty
    # (not stale).
    with open(os.path.join(workdir, LOCK_FILE)) as file:
        assert file.read() == ""
    with WorkdirLock(workdir):
        pass


def test_a_dead_runs_lock_is_taken_over_with_a_warning(tmp_path, caplog):
    # No flock is held on the file: its process is gone, whatever it says.
    stale = {"host": "elsewhere", "pid": 4194304, "since": "yesterday"}
    (tmp_path / LOCK_FILE).write_text(json.dumps(stale))
    with caplog.at_level("WARNING"), WorkdirLock(str(tmp_path)):
        with open(tmp_path / LOCK_FILE) as file:
            assert json.load(file)["pid"] == os.getpid()
        with pytest.raises(WorkdirInUseError, match=f"pid {os.getpid()} "):
            WorkdirLock(str(tmp_path)).__enter__()
    assert "(pid 4194304 on host elsewhere since yesterday) is gone" in (
        caplog.text
    )


def test_a_workdir_that_is_a_file_is_refused(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("mine")
    with pytest.raises(NotADirectoryError, match="is a file: give a dir"):
        train_lib.train_and_evaluate(configs.load("tiny"), str(path))
    assert path.read_text() == "mine"
