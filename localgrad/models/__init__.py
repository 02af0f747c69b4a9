"""Architectures as `localgrad.Network`s, chosen by name with `build`."""

from localgrad.models.cifar_resnet import stage_boundaries
from localgrad.models.registry import MODEL_NAMES, build
from localgrad.models.residual import (
    BasicBlock,
    BottleneckBlock,
    ResidualUnit,
    ResNetStem,
)
from localgrad.models.units import ChainedUnit, ConvBNReLU, DenseBNReLU

__all__ = [
    "MODEL_NAMES",
    "BasicBlock",
    "BottleneckBlock",
    "ChainedUnit",
    "ConvBNReLU",
    "DenseBNReLU",
    "ResNetStem",
    "ResidualUnit",
    "build",
    "stage_boundaries",
]
