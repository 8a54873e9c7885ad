"""engine.schema: converters built once per type; errors still name the exact path of the bad value."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import pytest

from engine.schema import SchemaError, from_plain, to_plain


class Color(StrEnum):
    RED = "red"


@dataclass(frozen=True)
class Inner:
    name: str
    values: tuple[float, ...] = ()
    tags: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Outer:
    id: int
    inner: tuple[Inner, ...] = ()
    by_name: dict[str, Inner] = field(default_factory=dict)
    maybe: float | None = None
    color: Color = Color.RED
    pair: tuple[int, str] = (0, "")


GOOD = {"id": 1, "inner": [{"name": "a", "values": [1, 2.5, 3]}, {"name": "b", "tags": ["x"]}],
        "by_name": {"k": {"name": "c"}}, "maybe": 2, "color": "red", "pair": [3, "z"], "unknown": "ignored"}


def test_round_trip_and_ints_become_floats():
    out = from_plain(Outer, GOOD)
    assert out.inner[0].values == (1.0, 2.5, 3.0) and all(type(v) is float for v in out.inner[0].values)
    assert out.maybe == 2.0 and type(out.maybe) is float and out.color is Color.RED and out.pair == (3, "z")
    assert from_plain(Outer, to_plain(out)) == out


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["inner"][0]["values"].__setitem__(1, True), "$.inner[0].values[1]: expected a number, got True"),
    (lambda d: d["inner"][1].__setitem__("tags", ["x", 3]), "$.inner[1].tags[1]: expected a string, got 3"),
    (lambda d: d["by_name"]["k"].pop("name"), "$.by_name.k: missing field 'name'"),
    (lambda d: d.__setitem__("maybe", "no"), "$.maybe: expected a number, got 'no'"),
    (lambda d: d.__setitem__("color", "blue"), "$.color: 'blue' is not a valid Color"),
    (lambda d: d.__setitem__("inner", {"a": 1}), "$.inner: expected a list, got dict"),
    (lambda d: d["inner"].__setitem__(0, 7), "$.inner[0]: expected an object for Inner, got int"),
    (lambda d: d.__setitem__("pair", [3, 4]), "$.pair[1]: expected a string, got 4"),
])
def test_errors_name_the_path_of_the_bad_value(change, message):
    import copy

    data = copy.deepcopy(GOOD)
    change(data)
    with pytest.raises(SchemaError) as err:
        from_plain(Outer, data)
    assert str(err.value) == message


def test_a_caller_path_prefixes_the_message():
    with pytest.raises(SchemaError, match=r"^snap\.json\.id: expected an integer, got 'x'$"):
        from_plain(Outer, {"id": "x"}, path="snap.json")
