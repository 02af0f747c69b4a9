"""A cluster of worker processes on this machine, for tests and benchmarks.

`LocalCluster(2)` starts two worker processes at free ports of 127.0.0.1,
waits until both answer, and stops exactly the processes it started, by
their process ids. Its addresses are loopback ones, but a TensorFlow
server listens on its port on every interface of the machine, with no
authentication: on a machine others can reach, start it inside a
loopback-only network namespace (as localgrad's test suite does) or
behind a firewall (see docs/devices.md, "Security"). With
`pin_cores=True` worker k runs on core k alone (`taskset -c k`), so that
K workers with one thread each behave like K single-core machines.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

from localgrad.distribute.probe import silent_tasks
from localgrad.errors import UserError

_SERVE = (
    "import sys; from localgrad.distribute.worker import serve; "
    "serve(sys.argv[1], int(sys.argv[2]), "
    "int(sys.argv[3]) if sys.argv[3] != 'default' else None)"
)


class LocalCluster:
    """Worker processes at 127.0.0.1 addresses, started and stopped by pid.

    Each listens on every interface (see the module's docstring).

    Example:

    ```python
    with LocalCluster(2, pin_cores=True, threads=1) as cluster:
        devices = localgrad.distribute.connect(cluster.cluster)
        ...
        cluster.kill(1)  # what a crash of task 1 looks like
        cluster.restart(1)  # the same task at the same address
    ```

    Args:
        num_workers: How many worker tasks to start.
        pin_cores: Pin worker k to core k of this process's cores (with
            `taskset`); needs at least `num_workers` cores.
        threads: Intra- and inter-op threads of every worker (`None`:
            TensorFlow's default).
        log_dir: Where each worker's output goes (`worker-k.log`); `None`
            discards it.
    """

    def __init__(
        self,
        num_workers: int,
        pin_cores: bool = False,
        threads: int | None = None,
        log_dir: str | None = None,
    ):
        if isinstance(num_workers, bool) or not (
            isinstance(num_workers, int) and num_workers >= 1
        ):
            raise UserError(
                f"num_workers={num_workers!r} must be a positive integer."
            )
        cores = sorted(os.sched_getaffinity(0))
        if pin_cores and len(cores) < num_workers:
            raise UserError(
                f"pin_cores=True needs a core per worker: {num_workers} "
                f"workers, {len(cores)} cores ({cores}). Use fewer workers "
                "or pin_cores=False."
            )
        if pin_cores and shutil.which("taskset") is None:
            raise UserError(
                "pin_cores=True needs `taskset` (util-linux); install it or "
                "use pin_cores=False."
            )
        self.num_workers = num_workers
        self.cores = cores[:num_workers] if pin_cores else None
        self.threads = threads
        self.log_dir = log_dir
        self.addresses = []
        self.processes = []

    @property
    def cluster(self) -> str:
        """The workers' addresses as `connect` takes them: `"a:p,b:q"`."""
        return ",".join(self.addresses)

    @property
    def pids(self) -> list:
        """The process id of every worker task, in task order."""
        return [process.pid for process in self.processes]

    def start(self, timeout: float = 120.0) -> "LocalCluster":
        """Starts the workers and waits until every one answers.

        Raises:
            RuntimeError: if a worker exits or does not answer within
                `timeout` seconds (all workers are then stopped).
        """
        self.addresses = [
            f"127.0.0.1:{port}" for port in _free_ports(self.num_workers)
        ]
        for task in range(self.num_workers):
            self.processes.append(self._launch(task))
        deadline = time.monotonic() + timeout
        silent = list(range(self.num_workers))
        while silent and time.monotonic() < deadline:
            exited = [t for t in silent if self.processes[t].poll() is not None]
            if exited:
                self.stop()
                raise RuntimeError(
                    f"Worker task {exited[0]} exited while starting "
                    f"(status {self.processes[exited[0]].returncode}); see "
                    f"its log in {self.log_dir or 'log_dir (not set)'}."
                )
            addresses = [self.addresses[t] for t in silent]
            still = silent_tasks(addresses, timeout=1.0)
            silent = [silent[i] for i in still]
        if silent:
            self.stop()
            raise RuntimeError(
                f"Worker tasks {silent} did not answer within {timeout:g} s."
            )
        return self

    def kill(self, task: int, signum: int = signal.SIGKILL) -> None:
        """Sends `signum` to worker `task` (SIGKILL: a crash) and reaps it."""
        process = self.processes[task]
        os.kill(process.pid, signum)
        if signum in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            process.wait()

    def restart(self, task: int, timeout: float = 120.0) -> None:
        """Starts worker `task` again at its address, after `kill`.

        Raises:
            ValueError: if worker `task` is still running.
            RuntimeError: if it does not answer within `timeout` seconds.
        """
        if self.processes[task].poll() is None:
            raise UserError(
                f"Worker task {task} is still running; kill(task) first."
            )
        self.processes[task] = self._launch(task)
        deadline = time.monotonic() + timeout
        while silent_tasks([self.addresses[task]], timeout=1.0):
            if self.processes[task].poll() is not None or (
                time.monotonic() > deadline
            ):
                raise RuntimeError(
                    f"Worker task {task} did not start again at "
                    f"{self.addresses[task]} within {timeout:g} s."
                )

    def stop(self, timeout: float = 30.0) -> list:
        """Stops every worker still running; returns their exit statuses.

        SIGTERM first (a worker exits with status 0), SIGKILL after
        `timeout` seconds for one that has not exited.
        """
        for process in self.processes:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGTERM)
        statuses = []
        for process in self.processes:
            try:
                statuses.append(process.wait(timeout=timeout))
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                statuses.append(process.wait())
        return statuses

    def __enter__(self) -> "LocalCluster":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _launch(self, task):
        command = [
            sys.executable,
            "-c",
            _SERVE,
            self.cluster,
            str(task),
            "default" if self.threads is None else str(self.threads),
        ]
        if self.cores is not None:
            command = ["taskset", "-c", str(self.cores[task])] + command
        if self.log_dir is None:
            output = subprocess.DEVNULL
        else:
            os.makedirs(self.log_dir, exist_ok=True)
            output = open(os.path.join(self.log_dir, f"worker-{task}.log"), "w")
        environment = dict(os.environ)
        environment.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        try:
            return subprocess.Popen(
                command,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=environment,
            )
        finally:
            if output is not subprocess.DEVNULL:
                output.close()


def _free_ports(count):
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
