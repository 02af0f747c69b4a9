"""MultiWorkerMirroredStrategy on a local two-process cluster.

What this asserts (README, "Data parallelism"): GreedyModel's per-block
steps, each its own `tf.function` around `strategy.run`, train under
MultiWorkerMirroredStrategy — two workers, each with half of every batch,
end with identical weights, equal to one process trained on the whole
batches — while Keras' own `fit` fails under that strategy before the
first step (keras-team/keras#20585).
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np

SCENARIOS = os.path.join(os.path.dirname(__file__), "distribute_scenarios.py")
NO_HANG_SECONDS = 300  # A bound against a hang; a run takes seconds.


def _start(*args):
    return subprocess.Popen(
        [sys.executable, SCENARIOS, "multi_worker", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )


def _result(process):
    out, err = process.communicate(timeout=NO_HANG_SECONDS)
    assert process.returncode == 0, out + err
    line = [line for line in out.splitlines() if line.startswith("RESULT")]
    return json.loads(line[-1][len("RESULT ") :])


def _free_addresses(count):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    addresses = [f"127.0.0.1:{s.getsockname()[1]}" for s in sockets]
    for sock in sockets:
        sock.close()
    return addresses


def test_per_block_steps_train_under_multi_worker_mirrored_strategy():
    cluster = ",".join(_free_addresses(2))
    # Task 0 then trains the reference, one process on the whole batches.
    workers = [_start(cluster, "0", "yes"), _start(cluster, "1")]
    try:
        results = [_result(worker) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    reference = results[0]["reference"]
    assert [r["replicas"] for r in results] == [2, 2]
    assert reference["replicas"] == 1
    for ours, theirs, start, expected in zip(
        results[0]["weights"],
        results[1]["weights"],
        reference["initial"],
        reference["weights"],
    ):
        np.testing.assert_array_equal(ours, theirs)  # Kept in sync.
        np.testing.assert_allclose(ours, expected, atol=1e-5)
        assert not np.array_equal(start, expected)  # Every variable trained.
    for result in results:
        assert "PerReplica" in result["fit"]  # Keras' fit does not.
