"""`localgrad-export` from a checkout (doc: localgrad/commands/export.py)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # TensorFlow's C++ INFO.

from localgrad.commands.export import main  # noqa: E402

if __name__ == "__main__":
    main()
