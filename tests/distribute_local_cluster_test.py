"""LocalCluster and start_worker refuse bad arguments before starting."""

import os

import pytest

import localgrad


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_workers=0), "positive integer"),
        (dict(num_workers=True), "positive integer"),
        (
            dict(num_workers=len(os.sched_getaffinity(0)) + 1, pin_cores=True),
            "needs a core per worker",
        ),
    ],
)
def test_local_cluster_refuses_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        localgrad.distribute.LocalCluster(**kwargs)


def test_a_pinned_local_cluster_uses_one_core_per_worker():
    cluster = localgrad.distribute.LocalCluster(1, pin_cores=True)
    assert cluster.cores == [sorted(os.sched_getaffinity(0))[0]]
    assert cluster.pids == [] and cluster.cluster == ""  # Not started yet.


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(task=2), "task=2 is not a task of a cluster of 2 workers"),
        (dict(task=-1), "--task=0..1"),
        (dict(task="1"), "integer task index"),
        (dict(task=0, threads=0), "threads=0 must be a positive integer"),
        (dict(task=0, cluster="host0"), "has no port"),
    ],
)
def test_start_worker_refuses_bad_arguments(kwargs, message):
    arguments = dict(cluster="127.0.0.1:1,127.0.0.1:2")
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        localgrad.distribute.start_worker(**arguments)
