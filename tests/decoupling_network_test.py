"""A decoupling file records its network's input shape and width."""

import json

import numpy as np
import pytest

import localgrad
from localgrad.decoupling_file import network_facts
from localgrad.search import make_decoupling, read_decoupling, write_decoupling


def _network(width=0.125, input_shape=(8, 8, 1)):
    return localgrad.models.build("vgg11", input_shape, 10, width=width)


def _write(path, network):
    units = network.num_units
    write_decoupling(
        path,
        make_decoupling(
            network.architecture,
            network.unit_names,
            ["mlp_sr", "linear"],
            np.tile([0.5, 0.5], (units - 1, 1)),
            np.tile([0.2, 0.8], (units - 1, 1)),
            network=network_facts(network),
        ),
    )


def test_the_file_records_the_networks_input_and_parameters(tmp_path):
    path = str(tmp_path / "decoupling.json")
    network = _network()
    _write(path, network)
    with open(path) as file:
        recorded = json.load(file)["network"]
    # VGG-11 at width 0.125: 8 channels; unit 1 is a 3x3 conv from 1
    # channel without bias (8 * 9) and its BatchNorm (4 * 8).
    assert recorded["input_shape"] == [8, 8, 1]
    assert recorded["unit_parameters"][0] == 8 * 9 + 4 * 8
    assert read_decoupling(path, _network()).network == recorded


@pytest.mark.parametrize(
    "other, named",
    [
        (dict(width=0.25), "parameters per unit (its width) [104, "),
        (dict(input_shape=(8, 8, 3)), "input shape [8, 8, 1], but this"),
    ],
)
def test_another_width_or_input_is_refused_naming_both(tmp_path, other, named):
    path = str(tmp_path / "decoupling.json")
    _write(path, _network())
    with pytest.raises(ValueError) as refused:
        read_decoupling(path, _network(**other))
    message = str(refused.value)
    assert named in message
    assert "search it at this width and input shape" in message


def test_a_file_without_the_record_still_reads(tmp_path):
    # SEDONA's published decouplings (and files of earlier localgrad
    # versions) record no input shape or width.
    path = str(tmp_path / "decoupling.json")
    _write(path, _network())
    with open(path) as file:
        content = json.load(file)
    del content["network"]
    with open(path, "w") as file:
        json.dump(content, file)
    assert read_decoupling(path, _network(width=0.25)).network == {}
