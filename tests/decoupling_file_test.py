"""The decoupling reader is a leaf: the core does not import the search."""

import ast
import pathlib

import localgrad

PACKAGE = pathlib.Path(localgrad.__file__).parent


def _imports(path):
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def test_only_the_package_namespace_imports_the_search():
    importers = sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if "search" not in path.relative_to(PACKAGE).parts
        and any(
            name == "localgrad.search" or name.startswith("localgrad.search.")
            for name in _imports(path)
        )
    )
    # The package namespace re-exports it; localgrad-search's entry point
    # runs it; train_config (the job's config layer, not the core) names
    # the shipped published decoupling files.
    assert importers == ["__init__.py", "commands/search.py", "train_config.py"]


def test_the_reader_imports_nothing_of_localgrad_but_its_error_type():
    path = PACKAGE / "decoupling_file.py"
    imported = [n for n in _imports(path) if n.startswith("localgrad")]
    assert imported == ["localgrad.errors", "localgrad.errors.UserError"]
    assert localgrad.search.read_decoupling is (
        localgrad.decoupling_file.read_decoupling
    )
