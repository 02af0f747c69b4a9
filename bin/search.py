"""`localgrad-search` from a checkout (doc: localgrad/commands/search.py)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # TensorFlow's C++ INFO.

from localgrad.commands.search import main  # noqa: E402

if __name__ == "__main__":
    main()
