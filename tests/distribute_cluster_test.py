"""Blocks on worker processes: placement, equal results, dead workers.

Scenarios connect in a process of their own (tests/distribute_scenarios.py),
because TensorFlow's connection to a cluster is process-wide; the workers
are real `tf.distribute.Server` processes on 127.0.0.1.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys

import pytest

import localgrad

SCENARIOS = os.path.join(os.path.dirname(__file__), "distribute_scenarios.py")
# A bound on every scenario, so that a hang fails the test instead of the
# suite; a scenario takes seconds.
NO_HANG_SECONDS = 300


def _run(scenario, *args, script=SCENARIOS):
    """Runs `scenario` of `script` in a fresh process; returns its RESULT."""
    completed = subprocess.run(
        [sys.executable, script, scenario, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=NO_HANG_SECONDS,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    lines = [
        line
        for line in completed.stdout.splitlines()
        if line.startswith("RESULT")
    ]
    assert lines, completed.stdout + completed.stderr
    return json.loads(lines[-1][len("RESULT ") :])


@contextlib.contextmanager
def restarting(workers, task):
    """Starts `task` again after the block killed it: the module's cluster
    stays whole for the next test (a restart costs one worker, a cluster
    two)."""
    try:
        yield
    finally:
        try:  # Dead once its loss was reported; alive if never killed.
            workers.processes[task].wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        else:
            workers.restart(task)


@pytest.fixture(scope="module")
def cluster():
    with localgrad.distribute.LocalCluster(2) as workers:
        yield workers
    assert workers.stop() == [0, 0]  # SIGTERM ends a worker with status 0.


@pytest.fixture(scope="module")
def connected(cluster):
    """One process for the scenarios that leave the cluster as it was: it
    first fails to connect to `silent` addresses (task 0 answers, task 1
    accepts connections and never answers, nothing listens at task 2),
    then connects to the cluster (`devices`, `placement`)."""
    frozen = socket.socket()  # Accepts connections, never answers.
    frozen.bind(("127.0.0.1", 0))
    frozen.listen(8)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    silent = [
        cluster.addresses[0],
        f"127.0.0.1:{frozen.getsockname()[1]}",
        f"127.0.0.1:{closed_port}",
    ]
    calls = [
        ["silent", ",".join(silent)],
        ["devices", cluster.cluster],
        ["placement", cluster.cluster],
    ]
    with frozen:
        results = _run("several", json.dumps(calls))
    return dict(results, silent_addresses=silent)


def test_connect_returns_one_device_per_task(cluster, connected):
    result = connected["devices"]
    expected = [
        "/job:worker/replica:0/task:0/device:CPU:0",
        "/job:worker/replica:0/task:1/device:CPU:0",
    ]
    assert result["one"] == expected
    assert result["all"] == expected  # CPU-only tasks: their CPU.
    assert result["connected"] == cluster.addresses


def test_models_live_and_train_on_their_workers_like_local_twins(connected):
    result = connected["placement"]
    for task in range(2):
        device = f"/job:worker/replica:0/task:{task}/device:CPU:0"
        assert result["variables"][task] == [device]
        assert result["optimizer_variables"][task] == [device]
    # The same steps from the same initial weights: identical weights.
    assert result["differences"] == [0.0, 0.0]
    assert min(result["changes"]) > 1e-3  # They did train.


def test_a_worker_killed_during_fit_is_named_not_waited_for(cluster):
    workers = cluster
    with restarting(workers, 1):
        result = _run("killed_during_fit", workers.cluster, workers.pids[1])
        # Task 0 still serves (the fixture's stop asserts it then exits 0).
        statuses = [
            workers.processes[0].poll(),
            workers.processes[1].wait(timeout=10),
        ]
    assert result["error"] == "WorkerLostError"
    assert result["tasks"] == [1]
    assert result["addresses"] == [workers.addresses[1]]
    # gRPC reports a peer killed mid-step as unavailable or, when the kill
    # lands during a transfer, as an internal error (seen under load).
    assert result["cause"] in ("UnavailableError", "InternalError")
    assert f"Worker task 1 at {workers.addresses[1]}" in result["message"]
    assert f"--cluster={workers.cluster} --task=1" in result["message"]
    assert statuses == [None, -signal.SIGKILL]


def test_workers_that_do_not_answer_are_named_within_the_timeout(connected):
    result, addresses = connected["silent"], connected["silent_addresses"]
    assert result["error"] == "ValueError"
    message = result["message"]
    assert "2 of 3 workers did not answer within 3 s" in message
    assert "task 0" not in message
    for task in (1, 2):
        assert f"task {task} at {addresses[task]}" in message
        assert f"--task={task}`" in message
