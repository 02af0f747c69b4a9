"""Tiny-ImageNet, ResNet-101: backprop, DGL and PredSim with K = 2 and 4.

Run (needs the tiny-imagenet-200 folder, unzipped; a GPU):

    localgrad-train \
        --config=paper/tiny_imagenet_resnet101:dgl_k4 \
        --config.data_dir=/data/tiny-imagenet-200 \
        --workdir=/tmp/tiny_imagenet_resnet101_dgl_k4

Variants: `backprop`, `dgl_k2`, `dgl_k4` (default), `predsim_k2`,
`predsim_k4`; a SEDONA decoupling with `dgl_k4` and
`--config.decoupling=<decoupling.json>` (SEDONA searched on CIFAR-10 and
transferred the decoupling to Tiny-ImageNet).

Recipe: the CIFAR-10 recipe (SGD momentum 0.9, learning rate 0.1 with cosine
decay, weight decay 5e-4, batch 128) on 64x64 images with pad-4 crop and
horizontal flip, 100 epochs; ResNet-101 at full width with the ImageNet stem
(localgrad.models.build gives it to images of 64 pixels per side and more),
so its last stage sees 2x2 maps. This is an assumed recipe, not one taken
from a paper: shared/methods.md lists no Tiny-ImageNet figure, and the
SEDONA paper (Pyeon et al., ICLR 2021) is the one to compare against.
On resume the finished epochs' data are not replayed (it would decode
100,000 JPEGs per finished epoch): the resumed run starts the data order
over, so it is not bit-identical to an uninterrupted one.
"""

from localgrad.train_config import paper_recipe


def get_config(variant="dgl_k4"):
    return paper_recipe("tiny_imagenet", "resnet101", variant)
