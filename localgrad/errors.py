"""The error localgrad raises for what its user can fix.

`UserError` is a bad config field or argument, a path, data that are not
what they say, a workdir in use, a cluster that cannot be used: raised
where the input is checked, with a message that names the problem and
the fix. It is a `ValueError`, so `except ValueError` still catches it.
The commands (`localgrad-train`, ...) print a `UserError` in one line and
exit with status 2; any other exception is a bug in localgrad or below
it, and keeps its traceback (status 1).

Example:

```python
try:
    localgrad.GreedyModel(net, num_blocks=0)
except localgrad.UserError as error:
    print(error)  # what is wrong, and how to fix it
```
"""


class UserError(ValueError):
    """Bad input, refused where it is checked; the message says the fix."""

    # TensorFlow's AutoGraph re-raises an error from traced code as its own
    # type only if that type's __init__ is Exception's (or it is one of a
    # few built-in types); any other becomes a StagingError.
    __init__ = Exception.__init__


class MissingPackageError(UserError, ImportError):
    """A feature needs a package that is not installed (`pip install ...`)."""
