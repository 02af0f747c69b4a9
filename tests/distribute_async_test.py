"""Real asynchronous DGL (a thread per block) on 2 worker processes.

The scenarios run in their own process (tests/distribute_async_scenarios.py;
connecting to a cluster is process-wide) against `tf.distribute.Server`
workers on 127.0.0.1 that the test starts.
"""

import os

import pytest
from distribute_cluster_test import _run

import localgrad

SCENARIOS = os.path.join(
    os.path.dirname(__file__), "distribute_async_scenarios.py"
)
WORKER = "/job:worker/replica:0/task:{}/device:CPU:0"
STEPS_PER_EPOCH = 22  # ceil(1400 digits / batches of 64)
BUFFER_SIZE = 3


@pytest.fixture(scope="module")
def cluster():
    with localgrad.distribute.LocalCluster(2) as workers:
        yield workers


def test_threads_on_workers_train_the_synchronous_weights(cluster):
    # Block 1 is 3x slower than block 0 and reads each batch once, in
    # the order written (fifo, max_reuse=1).
    result = _run(
        "threads_on_workers",
        cluster.cluster,
        BUFFER_SIZE,
        3.0,
        script=SCENARIOS,
    )
    assert result["executor"] == "ThreadedExecutor"
    assert not result["running"]  # The threads ended and were joined.
    assert result["devices"] == [WORKER.format(0), WORKER.format(1)]
    for task in range(2):  # Block k's variables and slots on task k.
        assert result["variables"][task] == [WORKER.format(task)]
        assert result["optimizer_variables"][task] == [WORKER.format(task)]
    assert result["buffer_devices"] == [WORKER.format(1)]  # The consumer's.
    # Each block trained one epoch of its own; the last never ran forward.
    assert result["block_steps"] == [STEPS_PER_EPOCH] * 2
    assert result["forward_steps"][1] == 0
    history = result["history"]
    assert history["block_0_epochs"][-1] == 1.0
    assert history["block_1_epochs"][-1] == 1.0
    assert len(history["val_accuracy"]) == len(history["loss"])
    (stats,) = result["statistics"]
    assert stats["reads"] == STEPS_PER_EPOCH  # One read per block 1 step.
    assert stats["skips"] == 0  # Block 1 samples only when it can.
    # Back-pressure held against the faster block 0: no batch was
    # overwritten unread (bin 0), none read twice (max_reuse=1), and
    # block 0 never got more than the buffer's size ahead.
    assert stats["uses_histogram"][0] == 0
    assert stats["writes"] == stats["reads"] + stats["unread"]
    assert stats["unread"] <= BUFFER_SIZE
    assert 0 <= result["forward_steps"][0] <= BUFFER_SIZE + 1
    # Block 1 saw block 0's outputs in the synchronous order, whatever
    # the threads' speeds: the parallel schedule's weights, exactly.
    assert result["difference"] == 0.0
    assert result["change"] > 1e-3  # And they did train.
    assert result["accuracy"] > 0.7  # Digits, 10 classes, one epoch.
