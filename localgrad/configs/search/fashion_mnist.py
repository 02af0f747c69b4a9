"""SEDONA search on Fashion-MNIST, for the network of the fashion_mnist config.

Run (needs `apt-get install -y dataset-fashion-mnist`, or
`--config.data_dir=<a directory with the four IDX .gz files>`):

    localgrad-search --config=search/fashion_mnist \
        --workdir=/tmp/search_fmnist

then train the K = 4 decoupling it found, with the heads at the width they
were searched at:

    localgrad-train --config=fashion_mnist:dgl \
        --config.decoupling=/tmp/search_fmnist/decoupling.json \
        --config.num_blocks=4 --config.head_width=0.25 \
        --workdir=/tmp/fmnist_sedona_k4

The network is the one localgrad-train trains on Fashion-MNIST (VGG-11 at a
quarter width, 8 units); the candidates are the 4 light heads at a quarter
width after each of its 7 non-last units. The budget is cut to fit well
under 20 minutes on 2 CPU cores: 40 % held out, batch 64, a 1000-step
warm-up (about 1.8 epochs of the 36,000 remaining examples) keeping 20
snapshots, 250 meta-iterations of T = 2 inner steps, no XLA (TensorFlow's
graph runtime runs this small supernet faster than XLA on CPU and traces
it in about 2 minutes instead of compiling for many). Everything else is
the paper's (methods.md §3).

Timing sample (60 warm-up steps and 10 meta-iterations, 2 CPU cores
shared with other jobs at a load of about 5): 0.25 s per warm-up step,
1.3 s per meta-iteration, about 2 minutes of tracing, 4.1 GB peak memory;
extrapolated to this budget, about 12 minutes.
"""

from localgrad.search.search_config import default_search_config


def get_config():
    config = default_search_config()
    config.model = "vgg11"
    config.width = 0.25
    config.dataset = "fashion_mnist"
    config.augment = False
    config.batch_size = 64
    config.head_width = 0.25
    config.warmup_steps = 1000
    config.memory_size = 20
    config.meta_iterations = 250
    config.inner_steps = 2
    config.jit = False
    config.log_every = 10
    return config
