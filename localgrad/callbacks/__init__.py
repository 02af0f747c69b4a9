"""Callbacks that steer or record greedy training."""

from localgrad.callbacks.greedy_schedule import GreedySchedule
