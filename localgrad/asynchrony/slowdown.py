"""Slowdowns of simulated asynchronous blocks: checking and parsing."""

import math
from collections.abc import Mapping

from localgrad.errors import UserError


def validate_slowdown(
    slowdown: Mapping[int, float] | None, num_blocks: int
) -> dict:
    """Checks per-block slowdown factors against a model's blocks.

    A slowdown s makes a block run s times slower than the others: in the
    simulation it is drawn with weight 1 / s instead of 1. s = 1 / 0.9
    (about 1.11) is the released code's noise 0.1; s < 1 is a faster
    block.

    Example:

    ```python
    validate_slowdown({3: 1 / 0.9}, num_blocks=6)  # {3: 1.111...}
    ```

    Args:
        slowdown: `{block: factor}`, or `None` for no slowed block.
        num_blocks: The number of blocks K.

    Returns:
        A new dict `{int block: float factor}` sorted by block.

    Raises:
        ValueError: for a block outside 0..K-1 or a factor that is not a
            finite number > 0.
    """
    checked = {}
    for block, factor in dict(slowdown or {}).items():
        if isinstance(block, bool) or not isinstance(block, int):
            raise UserError(
                f"slowdown keys are block indices (int); got {block!r}."
            )
        if not 0 <= block < num_blocks:
            raise UserError(
                f"slowdown names block {block}, but the model has "
                f"{num_blocks} blocks (0..{num_blocks - 1})."
            )
        if isinstance(factor, bool) or not isinstance(factor, (int, float)):
            raise UserError(
                f"The slowdown of block {block} must be a number; got "
                f"{factor!r}."
            )
        if not (math.isfinite(factor) and factor > 0):
            raise UserError(
                f"The slowdown of block {block} must be a finite number > 0 "
                f"(1 = normal speed, 2 = twice slower); got {factor}."
            )
        checked[block] = float(factor)
    return dict(sorted(checked.items()))


def parse_slowdown(text: str) -> dict:
    """Parses the command-line form `"block:factor,block:factor"`.

    The form of `--config.slowdown=3:1.11,5:2`. Block numbers are checked
    against the model later, by `validate_slowdown`.

    Example:

    ```python
    parse_slowdown("3:1.11,5:2")  # {3: 1.11, 5: 2.0}
    parse_slowdown("")            # {}: no slowed block
    ```

    Args:
        text: Comma-separated `block:factor` pairs; blank for none.

    Returns:
        `{int block: float factor}` sorted by block.

    Raises:
        ValueError: for a pair that is not `int:number`, a negative block,
            a block given twice or a factor that is not > 0.
    """
    slowdown = {}
    for pair in text.split(",") if text.strip() else []:
        block_text, colon, factor_text = pair.strip().partition(":")
        try:
            if not colon:
                raise UserError
            block, factor = int(block_text), float(factor_text)
        except ValueError:
            raise UserError(
                f"Bad slowdown {pair.strip()!r} in {text!r}: write "
                "block:factor pairs separated by commas, e.g. "
                "'3:1.11,5:2'."
            ) from None
        if block in slowdown:
            raise UserError(f"Block {block} is slowed twice in {text!r}.")
        if block < 0:
            raise UserError(
                f"Bad slowdown block {block} in {text!r}: blocks are "
                "numbered from 0."
            )
        slowdown[block] = factor
    return validate_slowdown(slowdown, num_blocks=max(slowdown, default=0) + 1)
