"""Real asynchronous DGL on 2 pinned workers, one slowed, against pipelined.

K = 2 blocks of a compute-balanced network (bench/pipeline_speed.py's
`greedy_model`), block k on worker k of
`LocalCluster(2, pin_cores=True, threads=1)`, each worker on its own core
with one thread. Worker `--slowed_task` is slowed for real by every factor
s of `--slowdowns`: while a configuration runs, this process stops that
worker (SIGSTOP) and lets it go on (SIGCONT) in cycles of
`--throttle_period` seconds, running 1/s of each, so its steps take about s
times longer whatever trains on it. A stop costs more than its length
(in a smoke run on a loaded machine, 10 ms cycles made the pipelined
epochs of 8 ms steps 11x longer at s = 1.5, 100 ms cycles 3x): keep the
steps long against the cycle, and read the effective slowdown from
`pipelined_slowdown` (pipelined epoch seconds at s / at s = 1.0, when
1.0 is among `--slowdowns`). On these same workers, in the same run, for
every s:

- `pipelined_2w`: `GreedySchedule("pipelined")`; every step both blocks
  train, so each waits for the slower one.
- `async_2w`: `GreedySchedule("async", buffer_size=M)` with the real
  asynchronous executor (a thread per block); each block trains at its own
  pace through its replay buffer, block 0 at most M unread batches ahead
  of block 1 (back-pressure).

Every block trains `--epochs` epochs of its own of `--epoch_steps` batches.
Figures per configuration: `epoch_seconds[k]`, the median wall time of one
of block k's own epochs (the first epoch, which traces, left out: under
async, the times between block k's step count crossing multiples of
`--epoch_steps`; pipelined, Keras' epoch times, fill and drain included),
`step_seconds[k]` = `epoch_seconds[k] / epoch_steps`, `run_seconds`,
the wall time of `fit` until every block is done, and where the start-up
goes: `first_epoch_seconds[k]`, the wall time from the start of `fit` to
the end of block k's first epoch (tracing included), and, under async,
`first_step_seconds[k]`, from the start of `fit` to the end of block k's
first step. `async_2w` rows add
`epoch_ratio_vs_pipelined[k]` (async / pipelined epoch seconds of block k,
< 1: faster) and `run_ratio_vs_pipelined`, and the executor's counts
(`block_steps`, `forward_steps`: block 0's steps past its epochs that keep
block 1 fed) and buffer statistics. Each configuration runs in its own
chief process (connecting is process-wide); the workers are started once.
The model flags (`--models`, `--width`, `--image_size`, `--batch_size`,
`--heads`, `--epoch_steps`, `--output`) are bench/pipeline_speed.py's.

Run on an idle machine (roughly 15 minutes on 2 CPU cores, estimated):

    python bench/async_speed.py --models=vgg11 --slowdowns=1.0,1.5,2.0 \
        --output=bench/results/async_speed.json

Smoke run at a tiny size (no figures to keep):

    python bench/async_speed.py --models=vgg11 --width=0.0625 \
        --batch_size=8 --epoch_steps=3 --epochs=2 --slowdowns=1.5 \
        --output=/tmp/async_speed.json
"""

import json
import os
import signal
import statistics
import threading
import time

from absl import app, flags
from pipeline_speed import (
    FLAGS,
    greedy_model,
    random_data,
    run_in_subprocess,
)

flags.DEFINE_list("slowdowns", ["1.0", "1.5", "2.0"], "Slowed worker's s.")
flags.DEFINE_integer("slowed_task", 1, "The worker task that is slowed.")
flags.DEFINE_integer("buffer_size", 5, "M, the replay buffer's batches.")
flags.DEFINE_integer("epochs", 4, "Epochs every block trains (>= 2).")
flags.DEFINE_float("throttle_period", 0.1, "Seconds of a stop/go cycle.")

SCHEDULES = ("pipelined_2w", "async_2w")
# The flags a schedule's process needs.
RUN_FLAGS = (
    "width",
    "image_size",
    "batch_size",
    "heads",
    "epoch_steps",
    "epochs",
    "buffer_size",
)
# Seconds between two looks at the asynchronous blocks' step counts.
POLL_SECONDS = 0.001


class Throttle:
    """Slows a process s times: stops it for 1 - 1/s of every period.

    Example:

    ```python
    with Throttle(workers.pids[1], slowdown=1.5, period=0.1):
        ...  # worker 1 runs 2/3 of the time
    ```
    """

    def __init__(self, pid: int, slowdown: float, period: float):
        if not slowdown >= 1.0:
            raise ValueError(f"slowdown must be >= 1; got {slowdown}.")
        self.pid, self.slowdown, self.period = pid, slowdown, period
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._cycle, daemon=True)

    def __enter__(self) -> "Throttle":
        if self.slowdown > 1.0:
            self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._done.set()
        if self._thread.is_alive():
            self._thread.join()
        os.kill(self.pid, signal.SIGCONT)

    def _cycle(self):
        running = self.period / self.slowdown
        while not self._done.is_set():
            os.kill(self.pid, signal.SIGSTOP)
            time.sleep(self.period - running)
            os.kill(self.pid, signal.SIGCONT)
            self._done.wait(running)


def measure(model_name, schedule, cluster):
    """Trains `model_name` with `schedule` on the workers; its figures."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import localgrad

    workers = localgrad.distribute.connect(cluster, timeout=120)
    with localgrad.distribute.reporting_lost_workers():
        model = greedy_model(model_name, workers[:2], num_blocks=2)
        x, y = random_data(FLAGS.epoch_steps)
        if schedule == "async_2w":
            figures = _async_figures(model, x, y)
        else:
            figures = _pipelined_figures(model, x, y)
    steps = FLAGS.epoch_steps
    figures["step_seconds"] = [e / steps for e in figures["epoch_seconds"]]
    return dict(figures, schedule=schedule, boundaries=model.boundaries)


def _fit(model, x, y, epochs, callbacks):
    """Fits; returns the wall seconds it took."""
    start = time.perf_counter()
    model.fit(
        x,
        y,
        batch_size=FLAGS.batch_size,
        epochs=epochs,
        shuffle=False,
        callbacks=callbacks,
        verbose=0,
    )
    return time.perf_counter() - start


def _pipelined_figures(model, x, y):
    import keras

    import localgrad

    starts, seconds = {}, []
    clock = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: starts.update(
            {epoch: time.perf_counter()}
        ),
        on_epoch_end=lambda epoch, logs: seconds.append(
            time.perf_counter() - starts[epoch]
        ),
    )
    schedule = localgrad.callbacks.GreedySchedule("pipelined")
    run_seconds = _fit(model, x, y, FLAGS.epochs, [schedule, clock])
    epoch = statistics.median(seconds[1:])
    return {
        "epoch_seconds": [epoch, epoch],
        "first_epoch_seconds": [seconds[0], seconds[0]],
        "run_seconds": run_seconds,
    }


def _async_figures(model, x, y):
    import localgrad

    schedule = localgrad.callbacks.GreedySchedule(
        "async",
        buffer_size=FLAGS.buffer_size,
        block_epochs=FLAGS.epochs,
        verbose=0,
    )
    clock = _EpochCrossings(schedule, FLAGS.epoch_steps)
    run_seconds = _fit(
        model, x, y, schedule.total_epochs(2), [schedule, clock.callback()]
    )
    executor = schedule.async_run.executor
    return {
        "epoch_seconds": [
            statistics.median(epochs[1:]) for epochs in clock.epoch_seconds
        ],
        "first_epoch_seconds": [epochs[0] for epochs in clock.epoch_seconds],
        "first_step_seconds": clock.first_step_seconds,
        "run_seconds": run_seconds,
        "block_steps": executor.block_steps,
        "forward_steps": executor.forward_steps,
        "buffers": executor.statistics(),
    }


class _EpochCrossings:
    """When each asynchronous block ends its first step and its epochs.

    A thread looks at the executor's per-block step counts every
    `POLL_SECONDS` from the start of `fit` to its end.
    """

    def __init__(self, schedule, steps_per_epoch):
        self.schedule = schedule
        self.steps_per_epoch = steps_per_epoch
        self.epoch_seconds = None
        self.first_step_seconds = None
        self._done = threading.Event()
        self._thread = None

    def callback(self):
        import keras

        return keras.callbacks.LambdaCallback(
            on_train_begin=lambda logs: self._start(),
            on_train_end=lambda logs: self._stop(),
        )

    def _start(self):
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _stop(self):
        self._done.set()
        self._thread.join()

    def _watch(self):
        executor = self.schedule.async_run.executor
        started = time.perf_counter()
        ends = [[started] for _ in executor.block_steps]
        first_steps = [None for _ in executor.block_steps]
        while not self._done.is_set():
            now = time.perf_counter()
            for block, steps in enumerate(list(executor.block_steps)):
                if steps and first_steps[block] is None:
                    first_steps[block] = now - started
                while steps >= len(ends[block]) * self.steps_per_epoch:
                    ends[block].append(now)
            time.sleep(POLL_SECONDS)
        self.first_step_seconds = first_steps
        self.epoch_seconds = [
            [b - a for a, b in zip(times, times[1:])] for times in ends
        ]


def _compare(rows):
    """Adds the async row's ratios against the pipelined row."""
    pipelined, asynchronous = rows["pipelined_2w"], rows["async_2w"]
    asynchronous["epoch_ratio_vs_pipelined"] = [
        a / p
        for a, p in zip(
            asynchronous["epoch_seconds"], pipelined["epoch_seconds"]
        )
    ]
    asynchronous["run_ratio_vs_pipelined"] = (
        asynchronous["run_seconds"] / pipelined["run_seconds"]
    )


def _add_pipelined_slowdown(results, model_name):
    """Adds `pipelined_slowdown` to `model_name`'s rows: pipelined epoch
    seconds at their s / at s = 1.0 (if measured), the effective s."""
    rows = [r for r in results if r["model"] == model_name]
    pipelined = {
        r["slowdown"]: r["epoch_seconds"][0]
        for r in rows
        if r["schedule"] == "pipelined_2w"
    }
    if 1.0 in pipelined:
        for row in rows:
            row["pipelined_slowdown"] = (
                pipelined[row["slowdown"]] / pipelined[1.0]
            )


def _print_row(row):
    epochs = [round(e, 3) for e in row["epoch_seconds"]]
    line = (
        f"{row['model']:9s} s={row['slowdown']:4.2f} {row['schedule']:13s}"
        f" epoch of each block {epochs} s, run {row['run_seconds']:7.2f} s"
    )
    if "run_ratio_vs_pipelined" in row:
        ratios = [round(r, 2) for r in row["epoch_ratio_vs_pipelined"]]
        line += (
            f" (x pipelined: epochs {ratios}, "
            f"run {row['run_ratio_vs_pipelined']:.2f})"
        )
    print(line, flush=True)


def main(argv):
    del argv
    if FLAGS.epochs < 2 or FLAGS.epoch_steps < 1:
        raise app.UsageError("--epochs must be >= 2, --epoch_steps >= 1.")
    if FLAGS.slowed_task not in (0, 1):
        raise app.UsageError("--slowed_task must be 0 or 1 (2 workers).")
    if FLAGS.one:
        model_name, schedule = FLAGS.one.split(",")
        print(json.dumps(measure(model_name, schedule, FLAGS.cluster)))
        return
    import localgrad

    results = []
    with localgrad.distribute.LocalCluster(
        2, pin_cores=True, threads=1
    ) as workers:
        slowed = workers.pids[FLAGS.slowed_task]
        for model_name in FLAGS.models:
            for slowdown in map(float, FLAGS.slowdowns):
                rows = {}
                for schedule in SCHEDULES:
                    with Throttle(slowed, slowdown, FLAGS.throttle_period):
                        rows[schedule] = run_in_subprocess(
                            __file__,
                            f"{model_name},{schedule}",
                            workers.cluster,
                            RUN_FLAGS,
                        )
                _compare(rows)
                for row in rows.values():
                    row.update(model=model_name, slowdown=slowdown)
                    results.append(row)
                    _print_row(row)
            _add_pipelined_slowdown(results, model_name)
    if FLAGS.output:
        os.makedirs(os.path.dirname(FLAGS.output) or ".", exist_ok=True)
        with open(FLAGS.output, "w") as file:
            json.dump(
                {
                    "width": FLAGS.width,
                    "image_size": FLAGS.image_size,
                    "batch_size": FLAGS.batch_size,
                    "heads": FLAGS.heads,
                    "epoch_steps": FLAGS.epoch_steps,
                    "epochs": FLAGS.epochs,
                    "buffer_size": FLAGS.buffer_size,
                    "slowed_task": FLAGS.slowed_task,
                    "throttle_period": FLAGS.throttle_period,
                    "cpus": os.cpu_count(),
                    "results": results,
                },
                file,
                indent=2,
            )


if __name__ == "__main__":
    app.run(main)
