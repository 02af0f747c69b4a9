"""Tests of localgrad.train_summary on hand-made metrics."""

from localgrad.train_summary import summary


def test_summary_lists_every_head_and_every_artefact():
    metrics = {
        "config": {"model": "vgg11", "dataset": "digits", "method": "dgl"},
        "num_blocks": 2,
        "epochs": 3,
        "test_accuracy": 0.9123,
        "heads": [
            {"block": 0, "head": "mlp_sr", "depth": 4, "test_accuracy": 0.8},
            {
                "block": 1,
                "head": "classifier",
                "depth": 8,
                "test_accuracy": 0.9123,
            },
        ],
    }
    lines = summary(metrics, "/tmp/run").splitlines()
    assert lines == [
        "Done: vgg11 on digits, dgl, K = 2, 3 epochs.",
        "Test accuracy of the classifier: 91.23%",
        "  block 0 (mlp_sr after unit 4): 80.00%",
        "  block 1 (classifier after unit 8): 91.23%",
        "metrics:          /tmp/run/metrics.json",
        "plot:             /tmp/run/accuracy_by_block.png",
        "model:            /tmp/run/model.keras",
        "TensorBoard logs: /tmp/run/tensorboard",
        "See the curves: tensorboard --logdir /tmp/run/tensorboard",
        "Next, export it for serving:",
        "  localgrad-export --workdir=/tmp/run --output=/tmp/run/export",
    ]
