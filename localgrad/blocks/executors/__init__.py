"""Executors: how the blocks of a training step run."""

from localgrad.blocks.executors.asynchronous import (
    AsyncExecutor,
    AsyncSettings,
)
from localgrad.blocks.executors.executor import Executor
from localgrad.blocks.executors.pipelined import PipelinedExecutor
from localgrad.blocks.executors.synchronous import SynchronousExecutor
from localgrad.blocks.executors.threaded import ThreadedExecutor

EXECUTORS = {
    SynchronousExecutor.name: SynchronousExecutor,
    PipelinedExecutor.name: PipelinedExecutor,
    AsyncExecutor.name: AsyncExecutor,
}

__all__ = [
    "EXECUTORS",
    "AsyncExecutor",
    "AsyncSettings",
    "Executor",
    "PipelinedExecutor",
    "SynchronousExecutor",
    "ThreadedExecutor",
]
