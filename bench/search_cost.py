"""Cost of a SEDONA meta-iteration against an ordinary relaxed step.

A meta-iteration (T inner steps, the meta-gradient through them, Adam on
(alpha, beta), one ordinary relaxed step, the snapshot read from and
written back to the weight memory) is timed against one ordinary relaxed
training step of the same supernet (all candidate heads on every non-last
unit), with XLA on and off. Each mode runs in its own process. Figures:
median wall times after warm-up, the compile (trace) time of the first
call, and ratio = meta-iteration / relaxed step. Goal: ratio <= 8 and XLA
faster than not.

Run (VGG-19 at full width on 32x32 inputs with one candidate head per
unit; on 2 CPU cores about 5 minutes without XLA and 20 with it, mostly
tracing and compiling, and 10 GB of memory for XLA):

    python bench/search_cost.py --model=vgg19 --width=1.0 \
        --head_width=1.0 --heads=light1 --batch_size=32 --inner_steps=5 \
        --output=bench/results/search_cost.json

Prints a table and one JSON line. Tracing time grows with the number of
candidate heads times T (not with the width), hence one head here; the
search itself defaults to four.

Measured (2 CPU cores shared with other jobs, load 6-7, so within about
30 %): graph 1.14 s per relaxed step, 17.6 s per meta-iteration, ratio
15.4; XLA 9.5 s and 203 s, ratio 21.4 (XLA:CPU's convolutions are far
slower than TensorFlow's oneDNN kernels). First order (graph): ratio
12.1. The exact T = 5 meta-gradient replays forward, backward and the
reverse pass over both for every inner step, about 3 steps' work each, so
about 3 T + 1 steps per meta-iteration: 8x needs T = 2.
"""

import json
import os
import statistics
import subprocess
import sys
import time

from absl import app, flags

flags.DEFINE_string("model", "vgg19", "Network (localgrad.models name).")
flags.DEFINE_float("width", 1.0, "Network width.")
flags.DEFINE_float("head_width", 1.0, "Width of the candidate heads.")
flags.DEFINE_list("heads", ["light1", "light2", "light3", "light4"], "Heads.")
flags.DEFINE_integer("batch_size", 32, "Batch size.")
flags.DEFINE_integer("inner_steps", 5, "T.")
flags.DEFINE_integer("repeats", 3, "Timed repetitions (median).")
flags.DEFINE_list("modes", ["xla", "graph"], "xla and/or graph.")
flags.DEFINE_bool("first_order", False, "Time the first-order variant.")
flags.DEFINE_string("output", "", "Where to write the JSON results.")
flags.DEFINE_string("one", "", "Internal: measure one mode.")
FLAGS = flags.FLAGS


def measure(mode):
    """Measures one mode in this process; returns a dict."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np
    import tensorflow as tf

    import localgrad
    from localgrad.search import MetaStep, RelaxedSupernet, SupernetState

    keras.utils.set_random_seed(0)
    shape = (32, 32, 3)
    network = localgrad.models.build(FLAGS.model, shape, 10, width=FLAGS.width)
    supernet = RelaxedSupernet(network, FLAGS.heads, FLAGS.head_width)
    steps = MetaStep(
        supernet, jit_compile=mode == "xla", first_order=FLAGS.first_order
    )
    rows = network.num_units - 1
    alpha = keras.Variable(np.zeros((rows, 2)), dtype="float32")
    beta = keras.Variable(np.zeros((rows, len(FLAGS.heads))), dtype="float32")
    adam = keras.optimizers.Adam(1e-2, beta_1=0.5, beta_2=0.999)
    adam.build([alpha, beta])
    rng = np.random.default_rng(0)
    size = (FLAGS.inner_steps + 2, FLAGS.batch_size)
    x = rng.normal(size=size + shape).astype("float32")
    y = rng.integers(0, 10, size).astype("int32")
    rate = tf.constant(0.05)
    snapshot = SupernetState.from_layer(supernet).numpy()
    inner = FLAGS.inner_steps

    def relaxed_step(state):
        new_state, loss = steps.relaxed_step(
            state,
            tf.convert_to_tensor(alpha.value),
            tf.convert_to_tensor(beta.value),
            x[0],
            y[0],
            rate,
        )
        float(loss)
        return new_state

    def meta_iteration():
        state = snapshot.tensors()
        _, grad_alpha, grad_beta = steps.meta_gradient(
            state,
            tf.convert_to_tensor(alpha.value),
            tf.convert_to_tensor(beta.value),
            x[:inner],
            y[:inner],
            x[inner],
            y[inner],
            rate,
        )
        adam.apply([grad_alpha, grad_beta], [alpha, beta])
        new_state, _ = steps.relaxed_step(
            state,
            tf.convert_to_tensor(alpha.value),
            tf.convert_to_tensor(beta.value),
            x[inner + 1],
            y[inner + 1],
            rate,
        )
        return new_state.numpy()

    tensors = snapshot.tensors()
    start = time.perf_counter()
    relaxed_step(tensors)
    step_compile = time.perf_counter() - start
    start = time.perf_counter()
    meta_iteration()
    meta_compile = time.perf_counter() - start
    step_times, meta_times = [], []
    for _ in range(FLAGS.repeats):
        start = time.perf_counter()
        relaxed_step(tensors)
        step_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        meta_iteration()
        meta_times.append(time.perf_counter() - start)
    step = statistics.median(step_times)
    meta = statistics.median(meta_times)
    return dict(
        mode=mode,
        step_seconds=step,
        meta_iteration_seconds=meta,
        ratio=meta / step,
        step_compile_seconds=step_compile,
        meta_compile_seconds=meta_compile,
    )


def main(argv):
    del argv
    if FLAGS.one:
        print(json.dumps(measure(FLAGS.one)))
        return
    results = []
    for mode in FLAGS.modes:
        command = [sys.executable, __file__, f"--one={mode}"] + [
            arg for arg in sys.argv[1:] if not arg.startswith("--output")
        ]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{mode} failed:\n{done.stderr[-3000:]}")
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    setting = dict(
        model=FLAGS.model,
        width=FLAGS.width,
        head_width=FLAGS.head_width,
        heads=FLAGS.heads,
        batch_size=FLAGS.batch_size,
        inner_steps=FLAGS.inner_steps,
        first_order=FLAGS.first_order,
        repeats=FLAGS.repeats,
    )
    print(
        f"{'mode':6} {'step s':>8} {'meta-iter s':>12} {'ratio':>6} "
        f"{'compile step s':>15} {'compile meta s':>15}"
    )
    for r in results:
        print(
            f"{r['mode']:6} {r['step_seconds']:8.3f} "
            f"{r['meta_iteration_seconds']:12.3f} {r['ratio']:6.2f} "
            f"{r['step_compile_seconds']:15.1f} "
            f"{r['meta_compile_seconds']:15.1f}"
        )
    line = json.dumps(dict(setting, results=results))
    print(line)
    if FLAGS.output:
        os.makedirs(os.path.dirname(FLAGS.output) or ".", exist_ok=True)
        with open(FLAGS.output, "w") as file:
            file.write(line + "\n")


if __name__ == "__main__":
    app.run(main)
