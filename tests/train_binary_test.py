"""Runs bin/train.py end to end: overrides, a kill, and the resumed run."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
EPOCHS = 6
TRANSPORT_FLAGS = [
    "--config.model=resnet18",
    "--config.heads=cnn1",
    "--config.uzawa_step=1",
    "--config.uzawa_every=2",
]


def _command(workdir):
    return [
        sys.executable,
        os.path.join(ROOT, "bin", "train.py"),
        "--config=tiny",
        f"--workdir={workdir}",
        "--config.num_blocks=2",
        "--config.steps_per_epoch=5",
        f"--config.epochs={EPOCHS}",
    ]


def _environment():
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")


@pytest.fixture(scope="module")
def resumed(tmp_path_factory):
    """A run killed after its first checkpoint, then run again to the end.

    With the transport flags on ResNet-18 (which has the residual blocks
    the transport term needs), so that one pair of processes serves both
    the resume's and the transport logs' tests.
    """
    tmp_path = tmp_path_factory.mktemp("resumed")
    workdir = tmp_path / "run"
    command = _command(workdir) + TRANSPORT_FLAGS
    first_checkpoint = workdir / "checkpoints" / "epoch-0001.npz"
    first = subprocess.Popen(
        command,
        cwd=str(tmp_path),
        env=_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not first_checkpoint.exists():
        assert first.poll() is None, first.communicate()[0]
        assert time.monotonic() < deadline, "no checkpoint after 120 s"
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.communicate()
    finished = (workdir / "metrics.json").exists()
    # The resumed run deletes old checkpoints: keep the first epoch's.
    shutil.copy(first_checkpoint, tmp_path / "epoch-0001.npz")
    done = sorted(os.listdir(workdir / "checkpoints"))
    epochs_done = int(done[-1][len("epoch-") : -len(".npz")])
    second = subprocess.run(
        command,
        cwd=str(tmp_path),
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    return workdir, first.returncode, finished, epochs_done, second


def test_killed_run_resumes_and_finishes(resumed):
    workdir, returncode, finished, epochs_done, second = resumed
    assert returncode == -signal.SIGKILL
    assert not finished  # It did not finish.
    assert 1 <= epochs_done < EPOCHS

    assert second.returncode == 0, second.stdout + second.stderr
    # Not a terminal: one line per epoch, and only the missing epochs ran.
    assert "Epoch 1/" not in second.stdout
    assert f"Epoch {epochs_done + 1}/{EPOCHS}" in second.stdout
    assert f"Epoch {EPOCHS}/{EPOCHS}" in second.stdout
    epoch_lines = [
        line for line in second.stdout.splitlines() if "/step - " in line
    ]
    assert len(epoch_lines) == EPOCHS - epochs_done, second.stdout
    with open(workdir / "metrics.json") as file:
        metrics = json.load(file)
    assert [r["epoch"] for r in metrics["history"]] == list(range(EPOCHS))
    assert metrics["num_blocks"] == 2  # The command-line override.
    assert len(metrics["heads"]) == 2
    with open(workdir / "config.json") as file:
        assert json.load(file)["num_blocks"] == 2
    assert (workdir / "model.keras").exists()
    assert (workdir / "accuracy_by_block.png").exists()
    _check_summary(second.stdout, workdir, metrics)


def _check_summary(stdout, workdir, metrics):
    """The run ends by saying what it produced, naming real files."""
    summary = stdout[stdout.index("Done: resnet18 on digits") :].splitlines()
    accuracy = f"{metrics['test_accuracy']:.2%}"
    assert f"Test accuracy of the classifier: {accuracy}" in summary
    for head in metrics["heads"]:
        line = (
            f"  block {head['block']} ({head['head']} after unit "
            f"{head['depth']}): {head['test_accuracy']:.2%}"
        )
        assert line in summary
    named = {}
    for line in summary:
        what, _, path = line.partition(": ")
        if path.strip().startswith(str(workdir)):
            named[what] = path.strip()
    assert sorted(named) == ["TensorBoard logs", "metrics", "model", "plot"]
    for path in named.values():
        assert os.path.exists(path), path
    assert os.path.isdir(named["TensorBoard logs"])
    export = [line for line in summary if "localgrad-export" in line]
    assert len(export) == 1
    assert export[0].split()[0] == "localgrad-export"  # The installed one.
    assert f"--workdir={workdir} " in export[0]


def _scalar_tags(directory):
    tags = set()
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    return tags


def test_transport_flags_write_the_transport_logs(resumed):
    workdir, _, _, _, run = resumed
    assert run.returncode == 0, run.stdout + run.stderr
    # Epoch 1 ran in the killed process: its logs survived the resume.
    with open(workdir / "metrics.json") as file:
        logs = json.load(file)["history"][0]
    lambdas = [logs[f"block_{k}_uzawa_lambda"] for k in range(2)]
    # λ_k starts at k + 1; step 2 of 3 raised it by its cross-entropy.
    assert lambdas[0] > 1 and lambdas[1] > 2
    assert logs["block_0_transport"] > 0 and logs["block_1_transport"] > 0
    tags = _scalar_tags(workdir / "tensorboard" / "train")
    for k in range(2):
        assert f"epoch_block_{k}_transport" in tags
        assert f"epoch_block_{k}_uzawa_lambda" in tags
    with np.load(workdir.parent / "epoch-0001.npz") as stored:
        scalars = [
            float(stored[key])
            for key in stored.files
            if key.startswith("model/") and stored[key].ndim == 0
        ]
    for value in lambdas:
        assert any(abs(value - scalar) < 1e-6 for scalar in scalars)
