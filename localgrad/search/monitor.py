"""Progress of a search: log lines and TensorBoard summaries."""

import contextlib
import os
import time

import numpy as np
import tensorflow as tf
from absl import logging

from localgrad.search.plots import alpha_beta_figure, figure_png


class SearchMonitor:
    """Reports the warm-up and the meta-iterations.

    A log line per call; with a log directory, TensorBoard scalars
    (`warmup/loss`, `warmup/learning_rate`, `search/objective`,
    `search/seconds_per_iteration`, `alpha/local_signal_unit_NN`) and an
    image `search/alpha_beta` of softmax(alpha) and softmax(beta) per unit.

    Example:

    ```python
    monitor = SearchMonitor("/tmp/search/tensorboard", net.unit_names,
                            ["light1", "light2"])
    monitor.meta(10, 2000, objective=1.23, seconds=0.8,
                 alpha_probs=a, beta_probs=b)
    ```

    Args:
        logdir: TensorBoard directory, or None for log lines only.
        unit_names: The network's unit names.
        head_names: The candidate head names.
    """

    def __init__(self, logdir, unit_names, head_names):
        self.unit_names = list(unit_names)
        self.head_names = list(head_names)
        self._writer = None
        if logdir is not None:
            os.makedirs(logdir, exist_ok=True)
            self._writer = tf.summary.create_file_writer(logdir)

    @contextlib.contextmanager
    def preparing(self, what: str, how: str):
        """Log lines around the first call of a compiled step.

        Example:

        ```python
        with monitor.preparing("the relaxed step", "tracing, XLA"):
            state, loss = steps.relaxed_step(...)
        ```

        Args:
            what: What is being prepared.
            how: How (what is traced and compiled), for the first line.
        """
        logging.info("Preparing %s (%s)...", what, how)
        start = time.perf_counter()
        yield
        logging.info(
            "Prepared %s in %.1f s (traced, compiled and run once).",
            what,
            time.perf_counter() - start,
        )

    def warmup(self, step, total, loss, learning_rate, snapshots):
        """Reports warm-up step `step` of `total`."""
        logging.info(
            "warm-up step %d/%d: relaxed loss %.4f, lr %.4g, %d snapshots",
            step,
            total,
            loss,
            learning_rate,
            snapshots,
        )
        if self._writer is not None:
            with self._writer.as_default(step=step):
                tf.summary.scalar("warmup/loss", loss)
                tf.summary.scalar("warmup/learning_rate", learning_rate)
            self._writer.flush()

    def meta(
        self, iteration, total, objective, seconds, alpha_probs, beta_probs
    ):
        """Reports meta-iteration `iteration` of `total` (1-based)."""
        local = np.asarray(alpha_probs)[:, 0]
        logging.info(
            "meta-iteration %d/%d: objective %.4f, %.3f s/iteration, "
            "a_l0 in [%.3f, %.3f]",
            iteration,
            total,
            objective,
            seconds,
            local.min(),
            local.max(),
        )
        if self._writer is None:
            return
        with self._writer.as_default(step=iteration):
            tf.summary.scalar("search/objective", objective)
            tf.summary.scalar("search/seconds_per_iteration", seconds)
            for index, value in enumerate(local):
                tf.summary.scalar(
                    f"alpha/local_signal_unit_{index + 1:02d}", float(value)
                )
            figure = alpha_beta_figure(
                alpha_probs,
                beta_probs,
                self.unit_names,
                self.head_names,
                f"meta-iteration {iteration}",
            )
            image = tf.image.decode_png(figure_png(figure), channels=4)
            tf.summary.image("search/alpha_beta", image[None])
        self._writer.flush()

    def close(self):
        """Flushes and closes the TensorBoard writer."""
        if self._writer is not None:
            self._writer.close()
