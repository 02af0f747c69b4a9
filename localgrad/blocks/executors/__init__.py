"""Executors: how the blocks of a training step run."""

from localgrad.blocks.executors.executor import Executor
from localgrad.blocks.executors.pipelined import PipelinedExecutor
from localgrad.blocks.executors.synchronous import SynchronousExecutor

EXECUTORS = {
    SynchronousExecutor.name: SynchronousExecutor,
    PipelinedExecutor.name: PipelinedExecutor,
}

__all__ = ["EXECUTORS", "Executor", "PipelinedExecutor", "SynchronousExecutor"]
