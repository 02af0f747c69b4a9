"""The command-line programs pip installs, one module per command.

Each module's `main()` is a console script of pyproject.toml:
`localgrad-train`, `localgrad-search`, `localgrad-export` and
`localgrad-worker`. Each is thin (absl flags, then one library call) and
runs through `localgrad.binaries.run`, which refuses bad input in one line.
"""
