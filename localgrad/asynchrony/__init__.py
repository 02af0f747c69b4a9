"""Asynchronous DGL's pieces: replay buffers and the simulated block order.

Example:

```python
buffer = localgrad.ReplayBuffer(30, features_spec, labels_spec,
                                device="/device:GPU:1")
order = localgrad.AsyncOrder(num_blocks=6, slowdown={3: 1 / 0.9}, seed=0)
slowdown = localgrad.asynchrony.parse_slowdown("3:1.11")  # {3: 1.11}
```
"""

from localgrad.asynchrony.order import AsyncOrder
from localgrad.asynchrony.replay_buffer import (
    UNBOUNDED_HISTOGRAM_BINS,
    ReplayBuffer,
    ReplaySample,
)
from localgrad.asynchrony.sampling import SAMPLINGS
from localgrad.asynchrony.slowdown import parse_slowdown, validate_slowdown
