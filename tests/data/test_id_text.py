"""IdParser: ids written as text (query strings, command-line tokens) read against an id map, as the CLI and the service do."""

from __future__ import annotations

import pytest

from recsys.data import IdMap, IdParser
from recsys.errors import DataError, ParameterError

MAPS = {
    "int": IdMap([3, 10, -7, 2**40]),
    "str": IdMap(["a", "10", "x y", "-7"]),
    "mixed": IdMap([5, "5b", "x", 12]),
}

#: Tokens as the command line reads them (`recsys recommend --users/--items/--history`), and the ids they
#: must become, worked out by hand from the map: an integer map reads digits as ints (unknown ones too,
#: to be reported); a text map keeps text; a mixed map turns digits into an int only when that int is an id.
CASES = {
    "int": (["10", "-7", "3", "1099511627776", "999", "0", "-0"], [10, -7, 3, 2**40, 999, 0, 0]),
    "str": (["a", "10", "x y", "-7", "nope", "3"], ["a", "10", "x y", "-7", "nope", "3"]),
    "mixed": (["5", "5b", "x", "12", "13", "zz", "-1"], [5, "5b", "x", 12, "13", "zz", "-1"]),
}


@pytest.mark.parametrize("kind", sorted(MAPS))
def test_strict_many_reads_command_line_tokens(kind: str) -> None:
    tokens, expected = CASES[kind]
    got = IdParser(MAPS[kind]).many(tokens, strict=True)
    assert got == expected
    assert [type(x) for x in got] == [type(x) for x in expected]  # 10 and "10" are different ids


def test_worked_values() -> None:
    assert IdParser(MAPS["int"]).many(["10", "-7", "999"]) == [10, -7, 999]  # 999: unknown, an int to be reported
    assert IdParser(MAPS["str"]).many(["10", 10, "a"]) == ["10", "10", "a"]
    assert IdParser(MAPS["mixed"]).many(["5", "5b", 12, "13"]) == [5, "5b", 12, "13"]  # 13 is not an id: text stays


def test_strict_refuses_text_that_cannot_be_an_integer_id() -> None:
    with pytest.raises(DataError, match=r"the model's ids are integers; got 'abc'"):
        IdParser(MAPS["int"]).many(["10", "abc", "4.2"], strict=True)
    with pytest.raises(DataError, match="got '4.2'"):
        IdParser(MAPS["int"]).many(["4.2"], strict=True)
    # without strict the text is kept, to be reported as an unknown id
    assert IdParser(MAPS["int"]).many(["10", "abc"]) == [10, "abc"]
    # text maps never refuse: any text may be an id
    assert IdParser(MAPS["str"]).many(["abc"], strict=True) == ["abc"]


def test_where_it_differs_from_the_old_command_line_reading() -> None:
    # the command line read tokens with Python's int(), which takes '+', '_' and non-ASCII digits as 10;
    # ids are exact ASCII digits here (as over HTTP), so these are refused on an integer map
    for token in ("+10", "1_0", "\u0661\u0660"):
        assert int(token) == 10
        with pytest.raises(DataError, match="the model's ids are integers"):
            IdParser(MAPS["int"]).many([token], strict=True)
    # a mixed map holding both 1 and "1": the id as written ("1") wins (the command line preferred 1)
    assert IdParser(IdMap([1, "1"])).many(["1"], strict=True) == ["1"]


def test_not_an_idmap_is_refused() -> None:
    with pytest.raises(ParameterError, match="'idmap' parameter of IdParser must be an IdMap"):
        IdParser([1, 2, 3])  # type: ignore[arg-type]
