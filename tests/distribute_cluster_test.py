"""Blocks on worker processes: placement, equal results, dead workers.

Every scenario connects in its own process (tests/distribute_scenarios.py),
because TensorFlow's connection to a cluster is process-wide; the workers
are real `tf.distribute.Server` processes on 127.0.0.1.
"""

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


@pytest.fixture(scope="module")
def cluster():
    with localgrad.distribute.LocalCluster(2) as workers:
        yield workers
    assert workers.stop() == [0, 0]  # SIGTERM ends a worker with status 0.


def test_connect_returns_one_device_per_task(cluster):
    result = _run("devices", cluster.cluster)
    expected = [
        "/job:worker/replica:0/task:0/device:CPU:0",
        "/job:worker/replica:0/task:1/device:CPU:0",
    ]
    assert result["one"] == expected
    assert result["all"] == expected  # CPU-only tasks: their CPU.
    assert result["connected"] == cluster.addresses


def test_models_live_and_train_on_their_workers_like_local_twins(cluster):
    result = _run("placement", cluster.cluster)
    for task in range(2):
        device = f"/job:worker/replica:0/task:{task}/device:CPU:0"
        assert result["variables"][task] == [device]
        assert result["optimizer_variables"][task] == [device]
    # The same steps from the same initial weights: identical weights.
    assert result["differences"] == [0.0, 0.0]
    assert min(result["changes"]) > 1e-3  # They did train.


def test_a_worker_killed_during_fit_is_named_not_waited_for():
    with localgrad.distribute.LocalCluster(2) as workers:
        result = _run("killed_during_fit", workers.cluster, workers.pids[1])
        statuses = workers.stop()
    assert result["error"] == "WorkerLostError"
    assert result["tasks"] == [1]
    assert result["addresses"] == [workers.addresses[1]]
    # gRPC reports a peer killed mid-step as unavailable or, when the kill
    # lands during a transfer, as an internal error (seen under load).
    assert result["cause"] in ("UnavailableError", "InternalError")
    assert f"Worker task 1 at {workers.addresses[1]}" in result["message"]
    assert f"--cluster={workers.cluster} --task=1" in result["message"]
    assert statuses == [0, -signal.SIGKILL]


def test_workers_that_do_not_answer_are_named_within_the_timeout(cluster):
    frozen = socket.socket()  # Accepts connections, never answers.
    frozen.bind(("127.0.0.1", 0))
    frozen.listen(8)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    addresses = [
        cluster.addresses[0],
        f"127.0.0.1:{frozen.getsockname()[1]}",
        f"127.0.0.1:{closed_port}",
    ]
    with frozen:
        result = _run("silent", ",".join(addresses))
    assert result["error"] == "ValueError"
    message = result["message"]
    assert "2 of 3 workers did not answer within 3 s" in message
    assert "task 0" not in message
    for task in (1, 2):
        assert f"task {task} at {addresses[task]}" in message
        assert f"--task={task}`" in message
