"""Latency of several forms of one model, timed in rotating turns.

Shared by bench/export_latency.py and bench/associated.py. Each turn calls
every form once, starting with a different one each turn, so that load
from other processes falls on all forms alike.

Example:

```python
from turns import time_in_turns
time_in_turns({"keras": model, "export": loaded.serve}, images,
              repeats=20, warmup=3)
# {"keras": {"median": 4.1, "min": 3.9, "repeats": 20}, "export": {...}}
```
"""

import statistics
import time


def time_in_turns(forms, images, repeats, warmup):
    """Median and minimum milliseconds per call of each form.

    Args:
        forms: Name -> callable on `images` (a tensor, or a dict with
            "logits").
        images: The batch every form is called on.
        repeats: Timed calls per form.
        warmup: Untimed calls per form first.

    Returns:
        Name -> {"median", "min", "repeats"}.
    """
    names = list(forms)
    for _ in range(warmup):
        for name in names:
            _call(forms[name], images)
    times = {name: [] for name in names}
    for turn in range(repeats):
        order = names[turn % len(names) :] + names[: turn % len(names)]
        for name in order:
            start = time.perf_counter()
            _call(forms[name], images)
            times[name].append(time.perf_counter() - start)
    return {
        name: {
            "median": 1e3 * statistics.median(values),
            "min": 1e3 * min(values),
            "repeats": len(values),
        }
        for name, values in times.items()
    }


def _call(function, images):
    outputs = function(images)
    if isinstance(outputs, dict):
        outputs = outputs["logits"]
    return outputs.numpy()  # Waits for the result.
