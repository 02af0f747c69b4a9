r"""`localgrad-train`: trains a network as a config describes.

    localgrad-train --config=quickstart --workdir=/tmp/run
    localgrad-train --config=paper/cifar10_vgg19:dgl_k4 \
        --config.data_dir=$HOME/tensorflow_datasets --workdir=/tmp/vgg19
    localgrad-train --config=/some/dir/my_config.py --workdir=/tmp/mine
    localgrad-train --config=quickstart --config.epochs=1 --show_config

`--config` takes a shipped config's name (`localgrad.configs.names()`),
with a variant after a colon, or a config file's path. Any config field
can be overridden (`--config.num_blocks=2`); `--show_config` prints every
field with its value, its default and what it is (`localgrad.train_fields`)
and exits. Started again with the same command after an
interruption, it resumes from the last finished epoch. The work
directory's layout is described in `localgrad/train_lib.py`.
"""

from absl import app, flags

from localgrad import (
    binaries,
    config_fields,
    train_fields,
    train_lib,
    train_summary,
)
from localgrad.commands.config_flag import define_run_flags

define_run_flags(
    "A config: a shipped one's name (quickstart, fashion_mnist:dgl, "
    "paper/cifar10_vgg19:sedona) or a file (my_config.py[:variant]).",
    run="the run",
)
FLAGS = flags.FLAGS


def main() -> None:
    """Runs `localgrad-train` with the command line's flags."""
    binaries.run(_main)


def _main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if FLAGS.show_config:
        print(config_fields.table(FLAGS.config, train_fields.FIELDS))
        return
    metrics = train_lib.train_and_evaluate(FLAGS.config, FLAGS.workdir)
    print(train_summary.summary(metrics, FLAGS.workdir))


if __name__ == "__main__":
    main()
