"""The lines localgrad-train prints when a run ends: results and next steps."""

import os


def summary(metrics: dict, workdir: str) -> str:
    """What a finished run produced, and the next command to try.

    The test accuracy of the classifier and of every head, where
    `metrics.json`, the plot, the model and the TensorBoard logs are, and
    the export command. `localgrad-train` prints it when training ends.

    Example:

    ```python
    metrics = train_lib.train_and_evaluate(config, "/tmp/run")
    print(train_summary.summary(metrics, "/tmp/run"))
    ```

    Args:
        metrics: What `train_and_evaluate` returned for `workdir`.
        workdir: The run's directory.

    Returns:
        Lines of text, without a final newline.
    """
    config = metrics["config"]
    lines = [
        f"Done: {config['model']} on {config['dataset']}, "
        f"{config['method']}, K = {metrics['num_blocks']}, "
        f"{metrics['epochs']} epochs.",
        f"Test accuracy of the classifier: {metrics['test_accuracy']:.2%}",
    ]
    for head in metrics["heads"]:
        lines.append(
            f"  block {head['block']} ({head['head']} after unit "
            f"{head['depth']}): {head['test_accuracy']:.2%}"
        )
    files = [
        ("metrics", "metrics.json"),
        ("plot", "accuracy_by_block.png"),
        ("model", "model.keras"),
        ("TensorBoard logs", "tensorboard"),
    ]
    for what, name in files:
        lines.append(f"{what + ':':18}{os.path.join(workdir, name)}")
    tensorboard = os.path.join(workdir, "tensorboard")
    export = os.path.join(workdir, "export")
    lines += [
        f"See the curves: tensorboard --logdir {tensorboard}",
        "Next, export it for serving:",
        f"  localgrad-export --workdir={workdir} --output={export}",
    ]
    return "\n".join(lines)
