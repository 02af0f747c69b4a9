r"""`localgrad-worker`: one worker task of a localgrad cluster, until stopped.

    localgrad-worker --cluster=host0:2222,host1:2222 --task=1
    taskset -c 0 localgrad-worker --cluster=127.0.0.1:2222 --task=0 \
        --threads=1                       # one core of this machine

Run one per machine (or per core), each with the same `--cluster` and its
own `--task`, then point the chief at the cluster
(`localgrad-train ... --config.cluster=...`, or
`localgrad.distribute.connect`). It prints the address it listens on and
exits with status 0 on SIGTERM or Ctrl-C.
"""

from absl import app, flags

from localgrad import binaries
from localgrad.distribute.worker import serve

flags.DEFINE_list("cluster", None, "Every worker's host:port, in task order.")
flags.DEFINE_integer("task", None, "This worker's index in --cluster.")
flags.DEFINE_integer(
    "threads", None, "Intra- and inter-op threads (default: TensorFlow's)."
)
flags.mark_flags_as_required(["cluster", "task"])
FLAGS = flags.FLAGS


def main() -> None:
    """Runs `localgrad-worker` with the command line's flags."""
    binaries.run(_main)


def _main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    serve(FLAGS.cluster, FLAGS.task, FLAGS.threads)


if __name__ == "__main__":
    main()
