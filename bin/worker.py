"""Starts one worker task of a localgrad cluster and serves until stopped.

    python bin/worker.py --cluster=host0:2222,host1:2222 --task=1
    taskset -c 0 python bin/worker.py --cluster=127.0.0.1:2222 --task=0 \
        --threads=1                       # one core of this machine

Run one per machine (or per core), each with the same `--cluster` and its
own `--task`, then point the chief at the cluster
(`localgrad.distribute.connect`). It prints the address it listens on and
exits with status 0 on SIGTERM or Ctrl-C.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # TensorFlow's C++ INFO.

from absl import app, flags  # noqa: E402

from localgrad.distribute.worker import serve  # noqa: E402

flags.DEFINE_list("cluster", None, "Every worker's host:port, in task order.")
flags.DEFINE_integer("task", None, "This worker's index in --cluster.")
flags.DEFINE_integer(
    "threads", None, "Intra- and inter-op threads (default: TensorFlow's)."
)
flags.mark_flags_as_required(["cluster", "task"])
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    try:
        serve(FLAGS.cluster, FLAGS.task, FLAGS.threads)
    except ValueError as error:
        raise app.UsageError(str(error)) from error


if __name__ == "__main__":
    app.run(main)
