"""Running a search without Grappler's graph rewrites.

TensorFlow rewrites every graph before its first run (Grappler: constant
folding, layout, arithmetic and remapping passes, function inlining). A
search's compiled steps are large graphs, the meta-gradient's a
second-order one, and rewriting them takes a large part of the wait
before the first meta-iteration. Without the rewrites, ResNet-50's search
(width 0.25, 4 candidates, T = 2, CPU) reached its first meta-iteration in
0.64x the CPU time, with a 1.12x higher peak of memory and meta-iterations
no faster (BENCHMARKS.md, "Cost of a SEDONA search"): worth it for a short
search, not for a long one. `localgrad-search` keeps them unless
`--config.graph_rewrites=false`.
"""

import contextlib

import tensorflow as tf

_OPTION = "disable_meta_optimizer"


@contextlib.contextmanager
def graph_rewrites(enabled: bool):
    """Within the block, graphs first run with Grappler on or off.

    The process-wide option is restored on exit. A graph keeps the
    rewrites it was first run with only while the option is unchanged, so
    run a search's steps inside one block.

    Example:

    ```python
    with graph_rewrites(False):
        result = search.run(x, y, workdir="/tmp/search")
    ```

    Args:
        enabled: Whether Grappler rewrites the graphs.
    """
    before = tf.config.optimizer.get_experimental_options().get(_OPTION, False)
    tf.config.optimizer.set_experimental_options({_OPTION: not enabled})
    try:
        yield
    finally:
        tf.config.optimizer.set_experimental_options({_OPTION: before})
