"""SEDONA search for VGG-19 on CIFAR-10 (the paper's budget).

Run (needs CIFAR-10 as a tfds data set, e.g. built with `tfds build
cifar10` on a machine with internet access; a GPU is advisable):

    localgrad-search --config=search/vgg19_cifar10 \
        --config.data_dir=$HOME/tensorflow_datasets --workdir=/tmp/search

then train the K = 4 decoupling it found:

    localgrad-train --config=paper/cifar10_vgg19:dgl_k4 \
        --config.decoupling=/tmp/search/decoupling.json \
        --config.num_blocks=4 --config.data_dir=$HOME/tensorflow_datasets \
        --workdir=/tmp/vgg19_sedona_k4

Budget (Pyeon et al., ICLR 2021; methods.md §3): 40 % of the training set
held out for the outer objective; a warm-up of the relaxed supernet (all 4
light heads on every non-last unit, alpha = beta = 0; SGD momentum 0.9, lr
0.1 cosine to 1e-3, weight decay 1e-4, label smoothing 0.1, batch 128)
keeping 50 snapshots; 2000 meta-iterations of T = 5 unrolled steps, Adam
on (alpha, beta) with lr 1e-2 and betas (0.5, 0.999). The warm-up length,
50,000 steps, is the released search code's default schedule length, not
a figure from the paper; shorten it with --config.warmup_steps. If the
T = 5 unroll does not fit in memory, --config.rematerialize=True keeps one
inner step's tensors instead of T steps', and a smaller
--config.batch_size shrinks them (BENCHMARKS.md measures what fits on a
24 GiB CPU machine).
"""

from localgrad.search.search_config import cifar10_search_config


def get_config():
    return cifar10_search_config("vgg19")
