"""localgrad: greedy block-wise (local) learning for Keras 3 / TensorFlow.

Example:

```python
import keras, localgrad
net = localgrad.models.build("vgg19", (32, 32, 3), num_classes=10, width=0.25)
model = localgrad.GreedyModel(net, num_blocks=4, heads="mlp_sr")
model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["accuracy"])
model.fit(x, y, epochs=3,
          callbacks=[localgrad.callbacks.GreedySchedule("parallel")])
```
"""

from localgrad import (
    associated,
    asynchrony,
    boundaries,
    callbacks,
    data,
    distribute,
    ensemble,
    export,
    heads,
    models,
    search,
    transport_term,
)
from localgrad.associated import AssociatedModel
from localgrad.asynchrony import AsyncOrder, ReplayBuffer
from localgrad.block_transport import BlockTransport
from localgrad.greedy_model import GreedyModel
from localgrad.network import Network
from localgrad.profile import UnitProfile, format_profile, profile
from localgrad.transport import Transport

__version__ = "0.1.0"
