"""Searches where to decouple a network, and with which heads (SEDONA).

    python bin/search.py --config=configs/search/fashion_mnist.py \
        --workdir=/tmp/search
    python bin/train.py --config=configs/fashion_mnist.py:dgl \
        --config.decoupling=/tmp/search/decoupling.json \
        --config.num_blocks=4 --workdir=/tmp/run

The heads are built at the width the search used (`head_width` of the
search config) unless `--config.head_width` is set. Any config field can be
overridden (`--config.meta_iterations=500`); the
fields are listed in `localgrad/search/search_config.py`. Started again
with the same command after an interruption, the search resumes from its
last checkpoint. The work directory's layout is described in
`localgrad/search/search_lib.py`.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # TensorFlow's C++ INFO.

from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from localgrad import binaries  # noqa: E402
from localgrad.search import search_lib  # noqa: E402

flags.DEFINE_string("workdir", None, "Directory for checkpoints and results.")
config_flags.DEFINE_config_file(
    "config", None, "A search config file (configs/search/*.py)."
)
flags.mark_flags_as_required(["config", "workdir"])
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    search_lib.run(FLAGS.config, FLAGS.workdir)


if __name__ == "__main__":
    binaries.run(main)
