"""localgrad: greedy block-wise (local) learning for Keras 3 / TensorFlow."""

from localgrad.network import Network

__version__ = "0.1.0"
