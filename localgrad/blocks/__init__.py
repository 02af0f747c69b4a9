"""The pieces of greedy training: blocks, objectives, hand-overs, executors.

A `GreedyModel` is K `Block`s; each learns from its `Objective` with its
own optimizer on its own device and hands a `HandOver` to the next; an
`Executor` runs the blocks for a training step (`SynchronousExecutor`,
`PipelinedExecutor`, or for asynchronous DGL `AsyncExecutor` (simulated)
and `ThreadedExecutor` (one thread per block)). A `TransportObjective`
adds Karkar et al.'s transport term to a block's objective.

Example:

```python
model = localgrad.GreedyModel(net, num_blocks=3, devices=["/cpu:0", "/cpu:1"])
block = model.blocks[2]
block.units, block.head, block.device  # the last block ends in the classifier
```
"""

from localgrad.blocks.block import Block, build_blocks, run_chain
from localgrad.blocks.executors import (
    EXECUTORS,
    AsyncExecutor,
    AsyncSettings,
    Executor,
    PipelinedExecutor,
    SynchronousExecutor,
    ThreadedExecutor,
)
from localgrad.blocks.hand_over import HandOver
from localgrad.blocks.objective import HeadObjective, LocalLoss, Objective
from localgrad.blocks.trackers import BlockTrackers
from localgrad.blocks.transport_objective import TransportObjective

__all__ = [
    "EXECUTORS",
    "AsyncExecutor",
    "AsyncSettings",
    "Block",
    "BlockTrackers",
    "Executor",
    "HandOver",
    "HeadObjective",
    "LocalLoss",
    "Objective",
    "PipelinedExecutor",
    "SynchronousExecutor",
    "ThreadedExecutor",
    "TransportObjective",
    "build_blocks",
    "run_chain",
]
