"""CIFAR-100, VGG_AL: Associated Learning against backprop.

Run (needs CIFAR-100 as a tfds data set, e.g. built with `tfds build
cifar100` on a machine with internet access; a GPU is advisable):

    localgrad-train --config=paper/cifar100_vgg_al_associated \
        --config.data_dir=$HOME/tensorflow_datasets \
        --workdir=/tmp/cifar100_vgg_al_associated

Variants: `associated` (default) and `backprop`, the same network end to end
through its own classifier with the same optimizer and budget
(`--config=paper/cifar100_vgg_al_associated:backprop`).

Network `vgg_al`: 4 components, [conv 128, conv 256, pool] [conv 256, conv
512, pool] [conv 512, pool, conv 512, pool] [flatten, Dense 1024 × 2],
conv-BN-ELU. Recipe of the official code (Kao & Chen, Neural Computation 2021;
`localgrad.associated.recipe`): label codes n = 500, Adam with lr 1e-4, the
label side at twice the rate, batch 32, 200 epochs, lr × 0.1 at epochs 80,
120 and 160 and × 0.5 at 180, the data set's standard augmentation. The
official L2 penalty and its brightness/contrast augmentation are not
reproduced.

Compare with the paper's CIFAR-100 table for VGG_AL (Kao & Chen 2021, arXiv
1906.05560); shared/methods.md records only the MNIST MLP (AL 98.6 %) and
CIFAR-10 VGG (AL 92.6 % vs backprop 92.3 %) figures. metrics.json's
test_accuracy is AL's h_1(…h_4(b_4(s_4))); its `heads` list the shortcut
accuracy at every depth.
"""

from localgrad.associated.recipe import paper_recipe


def get_config(variant="associated"):
    return paper_recipe("cifar100", "vgg_al", variant)
