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

import os as _os
import sys as _sys

# The commands (localgrad-train, ...) keep TensorFlow's C++ INFO lines
# (oneDNN, CUDA) out of their output; this must happen before TensorFlow
# loads, which importing localgrad does.
if _os.path.basename((getattr(_sys, "argv", None) or [""])[0]).startswith(
    "localgrad-"
):
    _os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

from localgrad import (
    associated,
    asynchrony,
    boundaries,
    callbacks,
    configs,
    data,
    distribute,
    ensemble,
    errors,
    export,
    heads,
    models,
    search,
    transport_term,
)
from localgrad.associated import AssociatedModel
from localgrad.asynchrony import AsyncOrder, ReplayBuffer
from localgrad.block_transport import BlockTransport
from localgrad.errors import UserError
from localgrad.greedy_model import GreedyModel
from localgrad.network import Network
from localgrad.profile import UnitProfile, format_profile, profile
from localgrad.transport import Transport

__version__ = "0.1.0"
