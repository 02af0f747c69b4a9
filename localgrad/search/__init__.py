"""SEDONA: searching where to decouple a network, and with which heads.

A search (Pyeon et al., ICLR 2021; methods.md §3) relaxes the choice of
block boundaries and auxiliary heads into continuous decision variables
(alpha, beta), learns them by meta-gradients through unrolled training
steps, and discretizes them into a decoupling for any number of blocks K.

Example:

```python
import localgrad
net = localgrad.models.build("vgg19", (32, 32, 3), 10)
result = localgrad.search.Search(net).run(x_train, y_train,
                                          workdir="/tmp/search")
boundaries, heads = localgrad.search.discretize(result, num_blocks=4)
model = localgrad.GreedyModel.from_decoupling(
    net, "/tmp/search/decoupling.json", num_blocks=4)
# Or the decoupling the SEDONA authors searched and published:
model = localgrad.GreedyModel.from_decoupling(
    net, localgrad.search.published_decoupling_path("vgg19"), num_blocks=4)
```
"""

from localgrad.decoupling_file import (
    Decoupling,
    read_decoupling,
    write_decoupling,
)
from localgrad.search.decoupling_builder import make_decoupling
from localgrad.search.discretize import discretize
from localgrad.search.gates import gate, relaxed_loss, smoothed_cross_entropy
from localgrad.search.meta_step import MetaStep
from localgrad.search.published import (
    decoupling_from_weights,
    published_decoupling,
    published_decoupling_path,
)
from localgrad.search.result import SearchResult
from localgrad.search.search import Search
from localgrad.search.state import SupernetState
from localgrad.search.supernet import DEFAULT_HEADS, RelaxedSupernet
from localgrad.search.weight_memory import Snapshot, WeightMemory

__all__ = [
    "DEFAULT_HEADS",
    "Decoupling",
    "MetaStep",
    "RelaxedSupernet",
    "Search",
    "SearchResult",
    "Snapshot",
    "SupernetState",
    "WeightMemory",
    "decoupling_from_weights",
    "discretize",
    "gate",
    "make_decoupling",
    "published_decoupling",
    "published_decoupling_path",
    "read_decoupling",
    "relaxed_loss",
    "smoothed_cross_entropy",
    "write_decoupling",
]
