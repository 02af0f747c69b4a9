"""Blocks on other machines: TensorFlow's distributed runtime, made safe.

Every machine runs a worker (`localgrad-worker --cluster=... --task=k`,
a `tf.distribute.Server`); the chief connects to them and gets one device
name per worker task, on which blocks are placed with `tf.device`. A worker
that is not there makes `connect` fail within its timeout, a worker that
dies during training is named by `reporting_lost_workers`, and one that
freezes ends the run, named, under `stopping_on_frozen_workers`.

Example:

```python
devices = localgrad.distribute.connect("host0:2222,host1:2222",
                                       timeout=60)
with tf.device(devices[1]):
    block = keras.Sequential([keras.layers.Dense(10)])
with localgrad.distribute.reporting_lost_workers():
    ...  # dispatch steps to the workers
```

`LocalCluster` starts worker processes on this machine (tests, benchmarks).
"""

from localgrad.distribute.addresses import parse_cluster, task_name
from localgrad.distribute.connect import (
    DEVICES_PER_TASK,
    connect,
    connected_cluster,
    worker_devices,
)
from localgrad.distribute.frozen_workers import (
    FROZEN_WORKER_EXIT_CODE,
    stopping_on_frozen_workers,
)
from localgrad.distribute.local_cluster import LocalCluster
from localgrad.distribute.lost_workers import (
    WorkerLostError,
    reporting_lost_workers,
)
from localgrad.distribute.probe import answers, silent_tasks
from localgrad.distribute.worker import serve, start_worker

__all__ = [
    "DEVICES_PER_TASK",
    "FROZEN_WORKER_EXIT_CODE",
    "LocalCluster",
    "WorkerLostError",
    "answers",
    "connect",
    "connected_cluster",
    "parse_cluster",
    "reporting_lost_workers",
    "serve",
    "silent_tasks",
    "start_worker",
    "stopping_on_frozen_workers",
    "task_name",
    "worker_devices",
]
