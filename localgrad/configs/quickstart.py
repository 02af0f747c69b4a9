"""Quickstart: DGL on Fashion-MNIST in a few minutes on a laptop CPU.

Run (needs `apt-get install -y dataset-fashion-mnist`, or
`--config.data_dir=<a directory with the four IDX .gz files>`):

    localgrad-train --config=quickstart --workdir=/tmp/quickstart

A VGG-11 at a quarter of its width (8 units, 0.58 M parameters) split
into K = 4 gradient-isolated blocks, each ending in a DGL `mlp_sr` head
(the default heads of method 'dgl') and trained by its own SGD optimizer,
all blocks at every step (DGL's parallel schedule), 3 epochs. On 2 CPU
cores (an Intel Xeon, 2026-12-07) it took 2 min 8 s and reached 89.34 %
test accuracy, 89.77 to 90.09 % at the heads (earlier runs: 2.5 minutes,
90.1 %; see metrics.json and accuracy_by_block.png in the
work directory);
the fashion_mnist config is the longer comparison of backprop, DGL and
PredSim.
"""

from localgrad.train_config import default_config


def get_config():
    config = default_config()
    config.dataset = "fashion_mnist"
    config.model = "vgg11"
    config.width = 0.25
    config.method = "dgl"
    config.num_blocks = 4
    config.batch_size = 128
    config.optimizer = "sgd"
    config.learning_rate = 0.05
    config.momentum = 0.9
    config.weight_decay = 5e-4
    config.lr_schedule = "cosine"
    config.epochs = 3
    return config
