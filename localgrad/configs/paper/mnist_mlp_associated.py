"""MNIST, MLP: Associated Learning against backprop (Kao & Chen, 2021).

Run (needs MNIST: the four idx files under --config.data_dir, or tfds):

    localgrad-train --config=paper/mnist_mlp_associated \
        --config.data_dir=$HOME/mnist --workdir=/tmp/mnist_mlp_al

Variants: `associated` (default) and `backprop` (the same MLP, end to
end, with the same optimizer and budget):
`--config=paper/mnist_mlp_associated:backprop`.

Recipe, from the official code (shared/methods.md §7;
`localgrad.associated.recipe`): label codes n = 1024, Adam with lr 1e-4
(the label side's at 2e-4), batch 32, 200 epochs, lr × 0.1 at epochs 80,
120 and 160 and × 0.5 at 180. The network is localgrad's `mlp` (4 hidden
layers of 1024, one component each). Published: AL 98.6 % vs backprop
98.5 % test accuracy on MNIST.

The paper's CIFAR-10/100 experiments (CNN_AL, VGG_AL, ResNet-20/32) are
the `paper/cifar10_*_associated` and
`paper/cifar100_*_associated` configs.
"""

from localgrad.associated.recipe import paper_recipe


def get_config(variant="associated"):
    return paper_recipe("mnist", "mlp", variant)
