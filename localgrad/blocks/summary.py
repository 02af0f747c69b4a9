"""The blocks of a GreedyModel as a table: units, heads, devices, sizes."""


def block_summary_lines(blocks, unit_names) -> list[str]:
    """One line per block, under a header, for `GreedyModel.summary`.

    Example:

    ```python
    for line in block_summary_lines(model.blocks, model.network.unit_names):
        print(line)
    # block  units                   head      device  unit params  head params
    # 0      1-2 (unit_0..unit_1)    linear    -       352          51
    ```

    Args:
        blocks: The model's `Block`s.
        unit_names: The network's unit names, in order.

    Returns:
        The table's lines (header, rule, one per block, total).
    """
    rows = [("block", "units", "head", "device", "unit params", "head params")]
    totals = [0, 0]
    for block in blocks:
        start, end = block.unit_range
        names = unit_names[start:end]
        span = names[0] if len(names) == 1 else f"{names[0]}..{names[-1]}"
        unit_params = _count(v for unit in block.units for v in unit.weights)
        head_params = _count(
            v for layer in block.auxiliary_layers for v in layer.weights
        )
        totals[0] += unit_params
        totals[1] += head_params
        head = getattr(block.head, "head_name", None) or block.head.name
        rows.append(
            (
                str(block.index),
                f"{start + 1}-{end} ({span})",
                head,
                block.device or "-",
                str(unit_params),
                str(head_params),
            )
        )
    rows.append(("total", "", "", "", str(totals[0]), str(totals[1])))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            cell.ljust(width) for cell, width in zip(row, widths)
        ).rstrip()
        for row in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    return lines


def _count(variables) -> int:
    total = 0
    for variable in variables:
        size = 1
        for dimension in variable.shape:
            size *= int(dimension)
        total += size
    return total
