"""Auxiliary heads: the small networks that give a block its local loss.

`build(name, input_shape, num_classes, width_mult=1.0)` returns a built
Keras layer mapping a block's output `(batch,) + input_shape` to logits
`(batch, num_classes)`. Names (`HEAD_NAMES`): "mlp_sr", "mlp", "cnn" (DGL),
"cnn1" (Karkar et al.), "light1".."light4" (SEDONA), "predsim" (Nøkland &
Eidnes) and "linear".
Only "linear" and "mlp" take flat `(C,)` features; the others need an
`(H, W, C)` map ("cnn" and "predsim" one of at least 2x2).

Head protocol. Every head's `call(features, training=None)` returns logits
only. A head whose loss is more than cross-entropy on those logits also has

    local_loss(features, labels, sample_weight=None, training=True)
        -> (loss, logits)

where `features` is the block output (the head's input), `labels` are
sparse int labels `(B,)` or one-hot / soft labels `(B, n)`, `loss` is a
float32 scalar averaged over the batch (a weighted mean when
`sample_weight` is given) and `logits` are what `call` would return. Of the
built-in heads only "predsim" has `local_loss`. A training loop checks
`hasattr(head, "local_loss")`: if present it uses it, otherwise it applies
the compiled loss to `head(features)`.

Every head class is registered as serializable under the package
"localgrad" and rebuilds itself from `get_config()`, so a model holding
heads round-trips through `model.save("model.keras")`.

Example:

```python
head = localgrad.heads.build("predsim", (8, 8, 16), num_classes=10)
features, labels = np.random.rand(4, 8, 8, 16), np.array([0, 1, 2, 1])
logits = head(features)  # (4, 10)
loss, logits = head.local_loss(features, labels)
```
"""

from localgrad.heads.base import Head
from localgrad.heads.cnn1 import CNN1Head
from localgrad.heads.dgl import CNNHead, MLPHead, MLPSRHead
from localgrad.heads.light import InvertedResidual, LightHead
from localgrad.heads.linear import LinearHead
from localgrad.heads.pooling import (
    AdaptiveAveragePooling2D,
    adaptive_pool_matrix,
)
from localgrad.heads.predsim import PredSimHead
from localgrad.heads.registry import HEAD_NAMES, build

__all__ = [
    "HEAD_NAMES",
    "AdaptiveAveragePooling2D",
    "CNN1Head",
    "CNNHead",
    "Head",
    "InvertedResidual",
    "LightHead",
    "LinearHead",
    "MLPHead",
    "MLPSRHead",
    "PredSimHead",
    "adaptive_pool_matrix",
    "build",
]
