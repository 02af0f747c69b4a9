"""ImageNet, ResNet-101: backprop, DGL and PredSim with K = 2 and 4.

Run (needs ImageNet built as the tfds `imagenet2012` data set, see
localgrad.data; several GPUs):

    localgrad-train --config=paper/imagenet_resnet101:dgl_k4 \
        --config.data_dir=$HOME/tensorflow_datasets \
        --workdir=/tmp/imagenet_resnet101_dgl_k4

Variants: `backprop`, `dgl_k2`, `dgl_k4` (default), `predsim_k2`,
`predsim_k4`; a SEDONA decoupling with `dgl_k4` and
`--config.decoupling=<decoupling.json>`.

Recipe: the standard ImageNet ResNet recipe the DGL and SEDONA papers
follow, as summarized for this project: batch 256, SGD with momentum 0.9,
learning rate 0.1 divided by 10 at epochs 30 and 60, weight decay 1e-4,
90 epochs, random-resized crops to 224 with horizontal flips (resize to
256 and centre crop for evaluation). On a GPU add
`--config.mixed_precision=mixed_float16`. On resume the finished epochs'
data are not replayed (that would decode the whole training set once per
finished epoch): the resumed run starts the data order over, so it is not
bit-identical to an uninterrupted one.

Compare with the published ImageNet top-1 errors of ResNet-101 at K = 4
(SEDONA paper, Pyeon et al., ICLR 2021; shared/methods.md section 3):
backprop 21.34 %, DGL 23.13 %, SEDONA 21.32 % (at 2.01x backprop's training
speed; DGL 1.92x).
"""

from localgrad.train_config import paper_recipe


def get_config(variant="dgl_k4"):
    return paper_recipe("imagenet2012", "resnet101", variant)
