"""Data sets for localgrad: named, normalized, batched `tf.data` pipelines.

Example:

```python
import localgrad.data

info = localgrad.data.info("fashion_mnist")  # no data read
train = localgrad.data.load("fashion_mnist", "train", batch_size=128)
x, y = localgrad.data.load_arrays("digits", "test")
```
"""

from localgrad.data.catalog import DATASET_NAMES, DatasetInfo, info
from localgrad.data.idx import read_idx
from localgrad.data.loader import holdout_mask, load, load_arrays
from localgrad.data.sources import training_statistics

__all__ = [
    "DATASET_NAMES",
    "DatasetInfo",
    "holdout_mask",
    "info",
    "load",
    "load_arrays",
    "read_idx",
    "training_statistics",
]
