"""SEDONA search for ResNet-101 on CIFAR-10 (the paper's budget).

Run (needs CIFAR-10 as a tfds data set, e.g. built with `tfds build
cifar10` on a machine with internet access; a GPU is advisable):

    localgrad-search --config=search/resnet101_cifar10 \
        --config.data_dir=$HOME/tensorflow_datasets \
        --workdir=/tmp/search_resnet101

then train the K = 4 decoupling it found:

    localgrad-train --config=paper/cifar10_resnet101:dgl_k4 \
        --config.decoupling=/tmp/search_resnet101/decoupling.json \
        --config.num_blocks=4 --config.data_dir=$HOME/tensorflow_datasets \
        --workdir=/tmp/resnet101_sedona_k4

The budget is the VGG-19 search's (search/vgg19_cifar10): 40 %
held out, warm-up with 50 snapshots, 2000 meta-iterations of T = 5, Adam
lr 1e-2 betas (0.5, 0.999) on (alpha, beta), the 4 light heads as
candidates after every residual unit. Deep ResNets make the T = 5 unroll
memory-hungry: --config.first_order=True drops the second-order terms.
"""

from localgrad.search.search_config import cifar10_search_config


def get_config():
    return cifar10_search_config("resnet101")
