"""Config fields declared once (localgrad.config_fields) and --show_config."""

import in_process
import pytest

from localgrad import config_fields, train_config, train_fields
from localgrad.config_fields import Field
from localgrad.search import search_config, search_fields


@pytest.mark.parametrize(
    "fields, default",
    [
        (train_fields.FIELDS, train_config.default_config),
        (search_fields.FIELDS, search_config.default_search_config),
    ],
    ids=["train", "search"],
)
def test_every_default_field_has_a_description(fields, default):
    docs = {field.name: field.doc for field in fields}
    assert sorted(docs) == sorted(default().keys())
    assert all(doc.strip() and "\n" not in doc for doc in docs.values())


def test_optional_fields_are_typed_placeholders():
    config = config_fields.config_from(
        [Field("epochs", 10, "Epochs."), Field("data_dir", None, "Dir.", str)]
    )
    assert (config.epochs, config.data_dir) == (10, None)
    config.data_dir = "/data"  # A placeholder takes its type later.
    with pytest.raises(TypeError):
        config.epochs = "ten"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"default": 1, "doc": ""}, "needs a one-line doc"),
        ({"default": 1, "doc": "two\nlines"}, "needs a one-line doc"),
        ({"default": None, "doc": "Dir."}, "give its type"),
    ],
)
def test_bad_fields_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Field("field", **kwargs)


def test_table_marks_changed_values_next_to_their_defaults():
    fields = [Field("epochs", 10, "Epochs."), Field("seed", 0, "The seed.")]
    config = config_fields.config_from(fields)
    config.epochs = 3
    lines = config_fields.table(config, fields).splitlines()
    assert lines[0].split() == ["field", "value", "default", "description"]
    assert lines[1].split() == ["*", "epochs", "3", "10", "Epochs."]
    assert lines[2].split() == ["seed", "0", "0", "The", "seed."]


def _show_config(command, *args, capsys, monkeypatch):
    # The command's main in this process (tests/in_process.py): its bin/
    # entry point runs in a real process in tests/binaries_test.py.
    status, out, err = in_process.run(
        command, *args, capsys=capsys, monkeypatch=monkeypatch
    )
    assert status in (None, 0), err
    return {
        line.split()[1] if line.startswith("*") else line.split()[0]: line
        for line in out.splitlines()
    }


def test_show_config_prints_an_override_next_to_its_default(
    capsys, monkeypatch
):
    rows = _show_config(
        "train",
        "--config=quickstart",
        "--config.num_blocks=2",
        "--show_config",
        capsys=capsys,
        monkeypatch=monkeypatch,
    )
    assert set(train_config.default_config().keys()) < set(rows)
    assert rows["num_blocks"].split()[:5] == ["*", "num_blocks", "2", "4", "K:"]
    assert "The network's width multiplier." in rows["width"]


def test_search_show_config_needs_no_workdir(capsys, monkeypatch):
    rows = _show_config(
        "search",
        "--config=search/tiny",
        "--show_config",
        capsys=capsys,
        monkeypatch=monkeypatch,
    )
    assert rows["inner_steps"].split()[:4] == ["*", "inner_steps", "2", "5"]
    assert rows["objective"].split()[:3] == ["objective", "'valid'", "'valid'"]
