"""The documentation runs and holds together.

Every ```python block of README.md and docs/**/*.md runs, page by page, in a
fresh namespace (the blocks of one page share it, in order). The few
blocks that cannot run here are listed in NOT_EXECUTED with the reason.
Also: relative links point at files that exist, every guide has Python
code, the figures quoted in README.md and in BENCHMARKS.md's summary are
found among the measured sections, and the API reference builds with
`mkdocs build --strict`.
"""

import os
import pathlib
import re
import subprocess
import sys

import keras
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md"] + sorted((ROOT / "docs").rglob("*.md"))
GUIDES = [
    "methods.md",
    "schedules.md",
    "devices.md",
    "search.md",
    "export.md",
    "command_line.md",
    "own_model.md",
]
# (page, a string found in the block): why the block is not executed.
NOT_EXECUTED = {
    ("docs/devices.md", "LocalCluster(2)"): (
        "starts two TensorFlow worker processes: about 20 s on 2 cores, "
        "and it connects this process to a cluster"
    ),
}
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _name(page):
    return str(page.relative_to(ROOT))


def python_blocks(page):
    """The page's ```python blocks, and the reason to skip each, if any."""
    blocks = _BLOCK.findall(page.read_text())
    return [
        (
            code,
            next(
                (
                    why
                    for (name, marker), why in NOT_EXECUTED.items()
                    if name == _name(page) and marker in code
                ),
                None,
            ),
        )
        for code in blocks
    ]


PAGES_WITH_CODE = [page for page in PAGES if python_blocks(page)]


@pytest.mark.parametrize("page", PAGES_WITH_CODE, ids=_name)
def test_page_code_runs(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    keras.backend.clear_session()
    namespace = {"__name__": f"docs_{page.stem}"}
    ran = 0
    for index, (code, why_not) in enumerate(python_blocks(page)):
        if why_not:
            print(f"{_name(page)} block {index}: not executed: {why_not}")
            continue
        compiled = compile(code, f"{_name(page)}[block {index}]", "exec")
        exec(compiled, namespace)
        ran += 1
    assert ran, f"{_name(page)}: every Python block is skipped"


def test_not_executed_markers_match_a_block():
    for (name, marker), _ in NOT_EXECUTED.items():
        codes = [code for code, _ in python_blocks(ROOT / name)]
        assert any(marker in code for code in codes), (name, marker)


@pytest.mark.parametrize("guide", GUIDES)
def test_every_guide_has_python(guide):
    assert python_blocks(ROOT / "docs" / guide), guide


@pytest.mark.parametrize("page", PAGES + [ROOT / "BENCHMARKS.md"], ids=_name)
def test_relative_links_exist(page):
    for target in _LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):
            continue
        assert (page.parent / target).exists(), f"{_name(page)}: {target}"


def _numbers(text):
    """The figures in a text: numbers with a decimal point or a comma."""
    return set(re.findall(r"\d[\d,]*\.\d+|\d{1,3}(?:,\d{3})+", text))


def _table(text, heading):
    """The lines of the first Markdown table after `heading`."""
    section = text.split(heading, 1)[1]
    lines = section.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    end = next(
        (i for i in range(start, len(lines)) if not lines[i].startswith("|")),
        len(lines),
    )
    return "\n".join(lines[start:end])


def _measured_text():
    benchmarks = (ROOT / "BENCHMARKS.md").read_text()
    body = benchmarks.split("## Summary", 1)[1].split("\n## ", 1)[1]
    pages = (ROOT / "docs" / "benchmarks").glob("*.md")
    return body + "\n".join(page.read_text() for page in pages)


@pytest.mark.parametrize(
    "page, heading",
    [("README.md", "## Results"), ("BENCHMARKS.md", "## Summary")],
)
def test_quoted_figures_are_measured_figures(page, heading):
    quoted = _numbers(_table((ROOT / page).read_text(), heading))
    missing = quoted - _numbers(_measured_text())
    assert not missing, f"{page} quotes figures not in BENCHMARKS: {missing}"


def test_api_reference_builds_strictly(tmp_path):
    pytest.importorskip("mkdocstrings_handlers.python")
    result = subprocess.run(
        # Not --quiet: it hides the warnings that --strict counts.
        [sys.executable, "-m", "mkdocs", "build", "--strict"]
        + ["--config-file", str(ROOT / "mkdocs.yml")]
        + ["--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "api" / "localgrad" / "index.html").exists()
