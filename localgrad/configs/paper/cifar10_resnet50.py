"""CIFAR-10, ResNet-50: backprop, DGL and PredSim with K = 2 and 4.

Run (needs CIFAR-10 as a tfds data set, e.g. built with `tfds build cifar10`
on a machine with internet access; a GPU is advisable):

    localgrad-train --config=paper/cifar10_resnet50:dgl_k4 \
        --config.data_dir=$HOME/tensorflow_datasets \
        --workdir=/tmp/cifar10_resnet50_dgl_k4

Variants: `backprop`, `dgl_k2`, `dgl_k4` (default), `predsim_k2`,
`predsim_k4`, and `sedona`: the decoupling the SEDONA authors searched
on CIFAR-10 and published (shipped with localgrad), with light heads at
the published width; K = 4, or any K with --config.num_blocks:

    localgrad-train --config=paper/cifar10_resnet50:sedona \
        --config.num_blocks=4 --config.data_dir=$HOME/tensorflow_datasets \
        --workdir=/tmp/cifar10_resnet50_sedona

A decoupling found by your own SEDONA search: the `dgl_k4` variant with
`--config.decoupling=<decoupling.json>`.

Recipe: the CIFAR-10 training set-up of the DGL (Belilovsky et al., ICML
2020) and SEDONA (Pyeon et al., ICLR 2021) evaluations as summarized for
this project: full-width ResNet-50, batch 128, SGD with momentum 0.9, learning
rate 0.1 with cosine decay to 0, weight decay 5e-4, 200 epochs, pad-4 crop
and horizontal flip; DGL blocks end in `mlp_sr` heads, PredSim blocks in
`predsim` heads; every block trains at every step. Check the papers'
appendices for their exact epoch counts before quoting a comparison.

No published figure for ResNet-50 on CIFAR-10 is listed in
shared/methods.md; the SEDONA paper's tables are the reference to compare
against.
"""

from localgrad.train_config import paper_recipe


def get_config(variant="dgl_k4"):
    return paper_recipe("cifar10", "resnet50", variant)
