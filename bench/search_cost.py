"""What a SEDONA search costs before and once it runs.

For every point (network, number of candidate heads M, unrolled steps T,
mode), in a fresh process of its own:

- `first_relaxed_step_seconds`: the first relaxed step (trace, compile
  and run), what the warm-up waits before its first step;
- `first_meta_iteration_seconds`: the first meta-iteration after that
  (the meta-gradient's trace, compile and run, Adam, one relaxed step);
- `time_to_first_meta_iteration_seconds`: the two together, the wait
  before the search meta-iterates (the warm-up's own steps excluded);
- `peak_memory_gb`: the process' peak resident memory (`ru_maxrss`);
- `relaxed_step_seconds`, `meta_iteration_seconds`: medians of
  `--repeats` steady-state calls, and their ratio.

Each time also comes as the process' CPU time (`*_cpu_seconds`, all
threads): tracing is mostly one thread, so on a loaded machine its CPU
time is closer to what an idle machine's wall time would be. The load
average is recorded at the start and end of each point: wall times taken
under load are slower than the machine's.

Full figures (issue 13; on an idle 2-core machine about half an hour,
the ResNet-50 four-candidate points peaking at 11 and 18 GB; add
`graph` to `--modes` to compare without Grappler's rewrites):

    python bench/search_cost.py --models=vgg19,resnet50 --width=0.25 \
        --candidates=1,4 --inner_steps=2,5 --modes=grappler \
        --output=bench/results/search_cost.json

Smoke run (seconds):

    python bench/search_cost.py --models=vgg11 --width=0.0625 \
        --input_size=8 --candidates=1 --inner_steps=1,2 --repeats=1 \
        --modes=graph,xla --output=/tmp/search_cost.json

Modes: `graph` (plain `tf.function` steps without Grappler's rewrites,
as `--config.graph_rewrites=false` runs them), `grappler` (the same with
Grappler's rewrites: TensorFlow's and `localgrad-search`'s default), `xla`
(XLA-compiled steps, without Grappler's rewrites) and `eager` (nothing
traced: every operation runs as it comes).

The candidate heads are light1..light{M} (the first M of `--head_names`),
at the network's width (`--head_width`, default = `--width`); batch 32,
32x32x3 inputs, ten classes. Prints a table and writes the raw JSON to
`--output`.
"""

import json
import os
import resource
import statistics
import subprocess
import sys
import time

from absl import app, flags

flags.DEFINE_list("models", ["vgg19", "resnet50"], "localgrad.models names.")
flags.DEFINE_float("width", 0.25, "Network width.")
flags.DEFINE_float("head_width", None, "Candidate heads' width (= width).")
flags.DEFINE_list(
    "head_names",
    ["light1", "light2", "light3", "light4"],
    "Candidate heads; a point with M candidates takes the first M.",
)
flags.DEFINE_list("candidates", ["1", "4"], "Numbers of candidate heads M.")
flags.DEFINE_list("inner_steps", ["2", "5"], "Unrolled steps T.")
# MetaStep's jit_compile in each mode.
JIT_COMPILE = {"graph": False, "grappler": False, "xla": True, "eager": None}
flags.DEFINE_list("modes", ["graph"], "graph, grappler, xla and/or eager.")
flags.register_validator(
    "modes",
    lambda modes: set(modes) <= set(JIT_COMPILE),
    "--modes takes graph, grappler, xla and/or eager, e.g. "
    "--modes=graph,grappler.",
)
flags.DEFINE_integer("batch_size", 32, "Batch size.")
flags.DEFINE_integer("input_size", 32, "Side of the square input.")
flags.DEFINE_integer("channels", 3, "Channels of the input.")
flags.DEFINE_integer("repeats", 3, "Steady-state calls timed (median).")
flags.DEFINE_bool("first_order", False, "Time the first-order variant.")
flags.DEFINE_bool(
    "rematerialize", False, "Recompute the inner steps (MetaStep's option)."
)
flags.DEFINE_bool(
    "fused_batch_norm", True, "BatchNormalization's fused kernel (MetaStep)."
)
flags.DEFINE_string("output", "", "Where to write the JSON results.")
flags.DEFINE_string("one", "", "Internal: model,M,T,mode of one point.")
FLAGS = flags.FLAGS


def measure(model, num_candidates, inner_steps, mode):
    """Measures one point in this process; returns a dict."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np
    import tensorflow as tf

    import localgrad
    from localgrad.search import MetaStep, RelaxedSupernet, SupernetState
    from localgrad.search.graph_rewrites import graph_rewrites

    keras.utils.set_random_seed(0)
    shape = (FLAGS.input_size, FLAGS.input_size, FLAGS.channels)
    network = localgrad.models.build(model, shape, 10, width=FLAGS.width)
    heads = FLAGS.head_names[:num_candidates]
    head_width = FLAGS.head_width or FLAGS.width
    supernet = RelaxedSupernet(network, heads, head_width)
    steps = MetaStep(
        supernet,
        jit_compile=JIT_COMPILE[mode],
        first_order=FLAGS.first_order,
        rematerialize=FLAGS.rematerialize,
        fused_batch_norm=FLAGS.fused_batch_norm,
    )
    rows = network.num_units - 1
    alpha = keras.Variable(np.zeros((rows, 2)), dtype="float32")
    beta = keras.Variable(np.zeros((rows, num_candidates)), dtype="float32")
    adam = keras.optimizers.Adam(1e-2, beta_1=0.5, beta_2=0.999)
    adam.build([alpha, beta])
    rng = np.random.default_rng(0)
    size = (inner_steps + 2, FLAGS.batch_size)
    x = rng.normal(size=size + shape).astype("float32")
    y = rng.integers(0, 10, size).astype("int32")
    rate = tf.constant(0.05)
    snapshot = SupernetState.from_layer(supernet).numpy()

    def decisions():
        return tf.convert_to_tensor(alpha.value), tf.convert_to_tensor(
            beta.value
        )

    def relaxed_step(state, index=0):
        new_state, loss = steps.relaxed_step(
            state, *decisions(), x[index], y[index], rate
        )
        float(loss)
        return new_state

    def meta_iteration():
        state = snapshot.tensors()
        _, grad_alpha, grad_beta = steps.meta_gradient(
            state,
            *decisions(),
            x[:inner_steps],
            y[:inner_steps],
            x[inner_steps],
            y[inner_steps],
            rate,
        )
        adam.apply([grad_alpha, grad_beta], [alpha, beta])
        return relaxed_step(state, inner_steps + 1).numpy()

    def timed(function, *args):
        """(wall seconds, CPU seconds of this process) of one call."""
        start, start_cpu = time.perf_counter(), time.process_time()
        function(*args)
        return (
            time.perf_counter() - start,
            time.process_time() - start_cpu,
        )

    with graph_rewrites(mode == "grappler"):
        load_start = os.getloadavg()[0]
        tensors = snapshot.tensors()
        first_step, first_step_cpu = timed(relaxed_step, tensors)
        first_meta, first_meta_cpu = timed(meta_iteration)
        step_times, meta_times = [], []
        for _ in range(FLAGS.repeats):
            step_times.append(timed(relaxed_step, tensors))
            meta_times.append(timed(meta_iteration))
        step, step_cpu = (statistics.median(t) for t in zip(*step_times))
        meta, meta_cpu = (statistics.median(t) for t in zip(*meta_times))
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return dict(
        model=model,
        units=network.num_units,
        candidates=num_candidates,
        inner_steps=inner_steps,
        mode=mode,
        first_relaxed_step_seconds=first_step,
        first_meta_iteration_seconds=first_meta,
        time_to_first_meta_iteration_seconds=first_step + first_meta,
        first_relaxed_step_cpu_seconds=first_step_cpu,
        first_meta_iteration_cpu_seconds=first_meta_cpu,
        time_to_first_meta_iteration_cpu_seconds=first_step_cpu
        + first_meta_cpu,
        peak_memory_gb=peak_kb / 2**20,
        relaxed_step_seconds=step,
        meta_iteration_seconds=meta,
        relaxed_step_cpu_seconds=step_cpu,
        meta_iteration_cpu_seconds=meta_cpu,
        ratio=meta / step,
        load_average_start=load_start,
        load_average_end=os.getloadavg()[0],
    )


def points():
    """Every (model, M, T, mode) the flags ask for."""
    return [
        (model, int(m), int(t), mode)
        for model in FLAGS.models
        for m in FLAGS.candidates
        for t in FLAGS.inner_steps
        for mode in FLAGS.modes
    ]


def run_point(point):
    """Measures `point` in a subprocess; returns its dict."""
    model, m, t, mode = point
    command = [sys.executable, __file__, f"--one={model},{m},{t},{mode}"] + [
        arg for arg in sys.argv[1:] if not arg.startswith("--output")
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{point} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv):
    del argv
    if FLAGS.one:
        model, m, t, mode = FLAGS.one.split(",")
        print(json.dumps(measure(model, int(m), int(t), mode)))
        return
    header = (
        f"{'model':9} {'M':>2} {'T':>2} {'mode':5} {'to 1st meta s':>13} "
        f"{'(CPU s)':>8} {'peak GB':>7} {'step s':>7} {'meta s':>7} "
        f"{'ratio':>5} {'load':>4}"
    )
    print(header, flush=True)
    results = []
    for point in points():
        r = run_point(point)
        results.append(r)
        print(
            f"{r['model']:9} {r['candidates']:2d} {r['inner_steps']:2d} "
            f"{r['mode']:5} {r['time_to_first_meta_iteration_seconds']:13.1f} "
            f"{r['time_to_first_meta_iteration_cpu_seconds']:8.1f} "
            f"{r['peak_memory_gb']:7.2f} {r['relaxed_step_seconds']:7.3f} "
            f"{r['meta_iteration_seconds']:7.3f} {r['ratio']:5.1f} "
            f"{r['load_average_start']:4.1f}",
            flush=True,
        )
    report = dict(
        settings=dict(
            width=FLAGS.width,
            head_width=FLAGS.head_width or FLAGS.width,
            head_names=FLAGS.head_names,
            batch_size=FLAGS.batch_size,
            input_shape=[FLAGS.input_size, FLAGS.input_size, FLAGS.channels],
            repeats=FLAGS.repeats,
            first_order=FLAGS.first_order,
            rematerialize=FLAGS.rematerialize,
            fused_batch_norm=FLAGS.fused_batch_norm,
            cpu_count=os.cpu_count(),
        ),
        results=results,
    )
    if FLAGS.output:
        os.makedirs(os.path.dirname(FLAGS.output) or ".", exist_ok=True)
        with open(FLAGS.output, "w") as file:
            json.dump(report, file, indent=1)
            file.write("\n")


if __name__ == "__main__":
    app.run(main)
