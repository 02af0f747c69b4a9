"""Callbacks that steer or record greedy training."""

from localgrad.callbacks.block_summaries import BlockSummaries
from localgrad.callbacks.checkpoint import (
    EpochCheckpoint,
    NoIntactCheckpointError,
)
from localgrad.callbacks.greedy_schedule import GreedySchedule
from localgrad.callbacks.precise_batch_norm import PreciseBatchNorm
