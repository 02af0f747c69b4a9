r"""`localgrad-search`: searches where to decouple a network (SEDONA).

    localgrad-search --config=search/fashion_mnist --workdir=/tmp/search
    localgrad-search --config=search/tiny --show_config
    localgrad-train --config=fashion_mnist:dgl \
        --config.decoupling=/tmp/search/decoupling.json \
        --config.num_blocks=4 --workdir=/tmp/run

`--config` takes a shipped search config's name (`search/...`) or a file's
path. The heads are built at the width the search used (`head_width` of
the search config) unless `--config.head_width` is set. Any config field
can be overridden (`--config.meta_iterations=500`); `--show_config`
prints every field with its value, its default and what it is
(`localgrad.search.search_fields`) and exits. Started again with the same
command after an interruption, the search resumes from its last
checkpoint. The work directory's layout is described in
`localgrad/search/search_lib.py`.
"""

from absl import app, flags

from localgrad import binaries, config_fields
from localgrad.commands.config_flag import define_run_flags
from localgrad.search import search_fields, search_lib

define_run_flags(
    "A search config: a shipped one's name (search/fashion_mnist, "
    "search/tiny) or a file (my_search.py[:variant]).",
    run="the search",
)
FLAGS = flags.FLAGS


def main() -> None:
    """Runs `localgrad-search` with the command line's flags."""
    binaries.run(_main)


def _main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if FLAGS.show_config:
        print(config_fields.table(FLAGS.config, search_fields.FIELDS))
        return
    search_lib.run(FLAGS.config, FLAGS.workdir)


if __name__ == "__main__":
    main()
