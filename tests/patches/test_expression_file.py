"""A patch's expression amounts in its file (format 5), and older files as they were."""

from __future__ import annotations

import json
import re

import pytest

from engine import KeyTable
from engine.expression import Expression
from patches import Patch, PatchError, load_patch, save_patch


def test_default_amounts_write_format_4_as_before(tmp_path):
    p = Patch("plain", KeyTable.flat())
    d = p.to_dict()
    assert d["format_version"] == 4 and "expression" not in d
    save_patch(p, tmp_path / "plain.json")
    assert load_patch(tmp_path / "plain.json").expression == Expression()


def test_amounts_round_trip_as_format_5(tmp_path):
    amounts = Expression().replace(pressure_db=3.0, wheel_vibrato_cents=20.0, vibrato_hz=6.25)
    save_patch(Patch("expressive", KeyTable.flat(), expression=amounts), tmp_path / "e.json")
    d = json.loads((tmp_path / "e.json").read_text())
    assert d["format_version"] == 5
    assert d["expression"] == {"pressure_db": 3, "wheel_vibrato_cents": 20, "vibrato_hz": 6.25}
    assert load_patch(tmp_path / "e.json").expression == amounts


@pytest.mark.parametrize(
    "version, expression, message",
    [
        (5, {"pressure_db": 99}, 'field "expression": pressure_db must be in range 0..24, got 99'),
        (5, {"loudness": 1}, "field \"expression\": unknown expression amount 'loudness'"),
        (5, {"vibrato_hz": "fast"}, 'field "expression": vibrato_hz must be a number in range 0.1..20'),
        (5, [], 'field "expression": expression must be an object'),
        (4, {"pressure_db": 3}, "unknown field(s) expression"),
    ],
)
def test_bad_amounts_are_refused_naming_the_field(tmp_path, version, expression, message):
    d = Patch("x", KeyTable.flat()).to_dict()
    d["format_version"] = version
    d["expression"] = expression
    (tmp_path / "x.json").write_text(json.dumps(d))
    with pytest.raises(PatchError, match=re.escape(message)):
        load_patch(tmp_path / "x.json")
