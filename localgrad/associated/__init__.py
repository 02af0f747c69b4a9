"""Associated Learning (Kao & Chen, Neural Computation 2021).

`AssociatedModel` cuts a `localgrad.Network` into components whose local
objectives are independent: each maps its input forward (f_i) and the
label code forward (g_i), a bridge b_i associates the two and a decoder
h_i maps the label code back. Its blocks run on the executors of
`localgrad.blocks` like a `GreedyModel`'s.

Example:

```python
model = localgrad.AssociatedModel(net, num_blocks=4, label_width=300)
model.compile(optimizer=keras.optimizers.Adam(1e-4), metrics=["accuracy"])
model.fit(x, y, epochs=20)
```
"""

from localgrad.associated.components import decode
from localgrad.associated.losses import associated_loss, autoencoder_loss
from localgrad.associated.model import AssociatedModel
from localgrad.associated.objective import AssociatedObjective
from localgrad.associated.optimizer import (
    ComponentOptimizer,
    ScaledLearningRate,
)

__all__ = [
    "AssociatedModel",
    "AssociatedObjective",
    "ComponentOptimizer",
    "ScaledLearningRate",
    "associated_loss",
    "autoencoder_loss",
    "decode",
]
