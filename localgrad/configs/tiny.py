"""A seconds-long run for tests: scikit-learn digits, a thin VGG-11, K = 3.

Run:

    localgrad-train --config=tiny --workdir=/tmp/tiny

Not a benchmark: it checks that every piece of a run works end to end
(digits are 8x8, so the VGG's later units see 1x1 maps). BatchNorm's
statistics are re-estimated on 2 batches, not the default 50, which
would cost more than an epoch's 22 training steps.
"""

from localgrad.train_config import default_config


def get_config():
    config = default_config()
    config.dataset = "digits"
    config.model = "vgg11"
    config.width = 0.125
    config.method = "dgl"
    config.num_blocks = 3
    config.batch_size = 64
    config.eval_batch_size = 512
    config.learning_rate = 0.05
    config.weight_decay = 5e-4
    config.epochs = 2
    config.precise_bn_batches = 2
    return config
