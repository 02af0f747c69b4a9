"""ThreadedExecutor: asynchronous DGL for real, one thread per block.

The Keras loop's thread is block 0's worker: each step it trains block 0
on the fresh batch and writes the output to buffer 0. Block k > 0 has its
own thread that loops on its own: sample buffer k - 1, step, write buffer
k. Each block's steps run on its device (`GreedyModel(devices=...)`), so
blocks on different devices compute at the same time; nothing orders them
but the buffers.

Back-pressure: a producer waits while its buffer holds M batches never
read (the consumer is behind); a consumer waits while nothing is eligible
(at the start, or with `max_reuse`). Every wait is on a
`threading.Condition` with a short timeout and also ends on a shared stop
event, so no thread waits for one that has gone. A block slowed by s > 1
sleeps s - 1 times its step's duration after each step but its first
(which traces the step: not a duration to multiply).

`finish_epoch` (called before every evaluation) pauses the workers once
their current step is done, so that validation reads the weights and
metrics alone; the next `train` resumes them. A producer waiting for room
while its consumer is paused writes anyway (over the oldest batch).

The run ends (`finish_run`) when block 0 has no more fresh batches: each
worker reads what is still unread in its buffer (and, while short of its
target steps, any eligible batch), then stops; a worker
also stops once it and every block after it have trained their target
steps. An exception in a worker stops every thread and is raised again
in the Keras thread.
"""

import threading
import time

from localgrad.blocks.executors.asynchronous import AsyncExecutor
from localgrad.blocks.hand_over import HandOver

# Seconds a waiting thread sleeps before it looks at the stop event again.
POLL_SECONDS = 0.05


class ThreadedExecutor(AsyncExecutor):
    """Runs every block in its own thread, at its own pace.

    Example:

    ```python
    model = localgrad.GreedyModel(net, num_blocks=2,
                                  devices=["/cpu:0", "/cpu:1"])
    model.compile(...)
    model.fit(x, y, epochs=5, callbacks=[
        localgrad.callbacks.GreedySchedule("async", buffer_size=5)])
    ```

    Blocks on the workers of a cluster run the same way, block k's steps
    on its worker task (`devices=localgrad.distribute.connect(...)`).

    Args:
        blocks: The model's compiled blocks.
        strategy: The model's distribution strategy (one replica).
        eager: Run the block steps eagerly.
        jit_compile: Compile each block's gradient computation with XLA.
        settings: `AsyncSettings` (its order is not used: the threads'
            speeds order the blocks).
        join_timeout: Seconds `finish_run` waits for the workers before
            it stops them and raises.

    Raises:
        ValueError: for bad settings or a strategy with several replicas.
    """

    def __init__(
        self,
        blocks,
        strategy,
        eager=False,
        jit_compile=False,
        settings=None,
        join_timeout: float = 600.0,
    ):
        super().__init__(blocks, strategy, eager, jit_compile, settings)
        self.join_timeout = join_timeout
        self._stop = threading.Event()
        # _exited[k]: block k's worker will step no more.
        self._exited = [threading.Event() for _ in self.blocks]
        self._conditions = [threading.Condition() for _ in self.blocks[1:]]
        self._threads = []
        self._errors = []
        # Workers step only while `_go` is set; each holds its lock while
        # it steps, so that `finish_epoch` can wait for the steps to end.
        self._go = threading.Event()
        self._go.set()
        self._step_locks = [threading.Lock() for _ in self.blocks]
        # The blocks that have stepped once (their step is traced).
        self._traced = set()

    @property
    def running(self) -> bool:
        """Whether worker threads are alive."""
        return any(thread.is_alive() for thread in self._threads)

    def train(self, x, y, sample_weight, trained) -> None:
        self._check_trained(trained)
        self._raise_errors()
        self._go.set()
        if self.buffers is None:
            self._ensure_buffers(x, y, sample_weight)
            self._start_workers()
        self.step(0, HandOver(x), y, sample_weight)
        self._raise_errors()

    def finish_epoch(self) -> None:
        """Pauses the workers after their current step (before evaluation).

        The next `train` call resumes them.
        """
        self._go.clear()
        self._notify_all()
        for lock in self._step_locks:
            with lock:
                pass

    def finish_run(self) -> None:
        """Block 0 is done: waits for the workers to finish, then joins.

        Raises:
            RuntimeError: if the workers do not end within `join_timeout`.
            Exception: the first exception raised in a worker.
        """
        self._exited[0].set()
        self._go.set()
        self._notify_all()
        deadline = time.monotonic() + self.join_timeout
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0.0))
        stuck = [t.name for t in self._threads if t.is_alive()]
        if stuck:
            self._stop.set()
            self._notify_all()
            for thread in self._threads:
                thread.join(POLL_SECONDS * 20)
        self._threads = []
        self._raise_errors()
        if stuck:
            raise RuntimeError(
                f"Asynchronous workers {stuck} did not end within "
                f"{self.join_timeout} s and were stopped."
            )

    def stop(self) -> None:
        """Stops and joins the workers at once (their steps finish first)."""
        self._stop.set()
        self._notify_all()
        for thread in self._threads:
            thread.join(self.join_timeout)
        self._threads = []

    def step(self, block, inputs, y, sample_weight) -> None:
        started = time.perf_counter()
        super().step(block, inputs, y, sample_weight)
        slowdown = self.settings.slowdown.get(block, 1.0)
        if slowdown > 1.0 and block in self._traced:
            time.sleep((slowdown - 1.0) * (time.perf_counter() - started))
        self._traced.add(block)

    def hand_on(self, block, outputs, y, sample_weight) -> None:
        """Writes to buffer `block` once it has room (back-pressure)."""
        buffer, condition = self.buffers[block], self._conditions[block]
        consumer_gone = self._exited[block + 1]
        with condition:
            while (
                not self._stop.is_set()
                and not consumer_gone.is_set()
                and self._go.is_set()
                and _statistic(buffer, "unread") >= buffer.buffer_size
            ):
                condition.wait(POLL_SECONDS)
        if self._stop.is_set() or consumer_gone.is_set():
            return
        super().hand_on(block, outputs, y, sample_weight)
        with condition:
            condition.notify_all()

    def _start_workers(self):
        for block in range(1, len(self.blocks)):
            thread = threading.Thread(
                target=self._work,
                args=(block,),
                name=f"localgrad-block-{block}",
                daemon=True,
            )
            self._threads.append(thread)
            thread.start()

    def _work(self, block):
        condition = self._conditions[block - 1]
        try:
            while not self._stop.is_set() and not self._finished(block):
                if self._step_if_going(block):
                    with condition:
                        condition.notify_all()  # Room for the producer.
                    continue
                with condition:
                    condition.wait(POLL_SECONDS)
        except BaseException as error:  # Raised again in the Keras thread.
            self._errors.append(error)
            self._stop.set()
        finally:
            self._exited[block].set()
            self._notify_all()

    def _step_if_going(self, block):
        """One step of block k, unless paused or nothing is eligible."""
        with self._step_locks[block]:
            if not self._go.is_set():
                return False
            if not self._exited[block - 1].is_set():
                wanted = "available"
            elif self.can_finish(block):  # The producer is done: use up.
                wanted = "available" if self.trains(block) else "unread"
            else:
                return False
            buffer = self.buffers[block - 1]
            return bool(_statistic(buffer, wanted)) and self.read_and_step(
                block
            )

    def _finished(self, block):
        """Whether block k's worker has nothing more to do."""
        if not any(self.trains(k) for k in range(block, len(self.blocks))):
            return True
        return self._exited[block - 1].is_set() and not self.can_finish(block)

    def _notify_all(self):
        for condition in self._conditions:
            with condition:
                condition.notify_all()

    def _raise_errors(self):
        if self._errors:
            raise self._errors[0]


def _statistic(buffer, name):
    return int(buffer.statistics()[name])
