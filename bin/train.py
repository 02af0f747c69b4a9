"""Trains a network with localgrad as a config file describes.

    python bin/train.py --config=configs/quickstart.py --workdir=/tmp/run
    python bin/train.py --config=configs/paper/cifar10_vgg19.py:dgl_k4 \
        --config.data_dir=$HOME/tensorflow_datasets --workdir=/tmp/vgg19

Any config field can be overridden (`--config.num_blocks=2`); the fields
are listed in `localgrad/train_config.py`. Started again with the same
command after an interruption, it resumes from the last finished epoch.
The work directory's layout is described in `localgrad/train_lib.py`.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # TensorFlow's C++ INFO.

from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from localgrad import binaries, train_lib, train_summary  # noqa: E402

flags.DEFINE_string("workdir", None, "Directory for checkpoints and results.")
config_flags.DEFINE_config_file(
    "config", None, "A config file (configs/*.py[:variant])."
)
flags.mark_flags_as_required(["config", "workdir"])
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    metrics = train_lib.train_and_evaluate(FLAGS.config, FLAGS.workdir)
    export_binary = os.path.join(os.path.dirname(__file__), "export.py")
    print(train_summary.summary(metrics, FLAGS.workdir, export_binary))


if __name__ == "__main__":
    binaries.run(main)
