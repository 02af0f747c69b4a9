"""Batches a search draws by position, so that a resumed search sees the
same data as an uninterrupted one.

Batch `index` of `stream` depends only on the seed, the stream and the
index: the examples are reshuffled every epoch of the stream with a
generator seeded by (seed, stream, epoch). Nothing about the data needs
saving in a checkpoint beyond the counters the search keeps anyway.
"""

import numpy as np

from localgrad.errors import UserError


class BatchSampler:
    """Draws batches of `(x, y)` by (stream, index), deterministically.

    Example:

    ```python
    sampler = BatchSampler(x, y, batch_size=128, seed=0, augment=True)
    images, labels = sampler.batch(stream=0, index=17)
    ```

    Args:
        x: Examples, `(N, ...)`.
        y: Integer labels, `(N,)`.
        batch_size: Examples per batch (every batch is full).
        seed: Seed of the shuffles and the augmentation.
        augment: Random 4-pixel shifts (zero padding, in the normalized
            scale) and left-right flips of `(N, H, W, C)` images: the
            standard CIFAR augmentation.

    Raises:
        ValueError: for fewer examples than one batch, mismatched lengths,
            or `augment` on inputs that are not images.
    """

    def __init__(
        self, x, y, batch_size: int, seed: int = 0, augment: bool = False
    ):
        x, y = np.asarray(x), np.asarray(y)
        if len(x) != len(y):
            raise UserError(
                f"x and y have different lengths ({len(x)} and {len(y)}); "
                "give one label per example."
            )
        if len(x) < batch_size:
            raise UserError(
                f"{len(x)} examples cannot fill one batch of {batch_size}; "
                "use a smaller batch_size or more data."
            )
        if augment and x.ndim != 4:
            raise UserError(
                f"augment=True shifts and flips images (N, H, W, C); the "
                f"inputs have shape {x.shape}. Set augment=False."
            )
        self.x, self.y = x, y
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.augment = bool(augment)
        self.batches_per_epoch = len(x) // self.batch_size
        self._order_key = None
        self._order = None

    def batch(self, stream: int, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Batch `index` of `stream` (streams are independent sequences)."""
        epoch, position = divmod(int(index), self.batches_per_epoch)
        if self._order_key != (stream, epoch):
            rng = np.random.default_rng([self.seed, int(stream), epoch])
            self._order = rng.permutation(len(self.x))
            self._order_key = (stream, epoch)
        start = position * self.batch_size
        chosen = np.sort(self._order[start : start + self.batch_size])
        images, labels = self.x[chosen], self.y[chosen]
        if self.augment:
            rng = np.random.default_rng([self.seed, int(stream), index, 1])
            images = shift_and_flip(images, rng)
        return images, labels


def shift_and_flip(
    images: np.ndarray, rng: np.random.Generator, padding: int = 4
) -> np.ndarray:
    """Zero-pads, randomly crops back and randomly flips each image.

    Example:

    ```python
    out = shift_and_flip(images, np.random.default_rng(0))  # same shape
    ```
    """
    count, height, width, _ = images.shape
    padded = np.pad(
        images, ((0, 0), (padding, padding), (padding, padding), (0, 0))
    )
    rows = rng.integers(0, 2 * padding + 1, size=count)
    cols = rng.integers(0, 2 * padding + 1, size=count)
    flips = rng.random(count) < 0.5
    out = np.empty_like(images)
    for i in range(count):
        crop = padded[i, rows[i] : rows[i] + height, cols[i] : cols[i] + width]
        out[i] = crop[:, ::-1] if flips[i] else crop
    return out
