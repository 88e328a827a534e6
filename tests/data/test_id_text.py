"""IdParser: ids written as text (query strings, command-line tokens) read against an id map, as the CLI and the service do."""

from __future__ import annotations

from typing import Any

import pytest

from recsys.data import IdMap, IdParser
from recsys.errors import DataError, ParameterError


def cli_ids_for(tokens: list[str], idmap: IdMap) -> list[Any]:
    """The command line's own reading of id tokens before it used IdParser (kept here as the reference)."""
    kind = idmap.ids.dtype.kind
    out: list[Any] = []
    for t in tokens:
        if kind in "iu":
            try:
                out.append(int(t))
            except ValueError:
                raise DataError(f"the model's ids are integers; got {t!r}") from None
        elif kind == "O":
            try:
                as_int = int(t)
            except ValueError:
                out.append(t)
                continue
            out.append(as_int if as_int in idmap else t)
        else:
            out.append(t)
    return out


MAPS = {
    "int": IdMap([3, 10, -7, 2**40]),
    "str": IdMap(["a", "10", "x y", "-7"]),
    "mixed": IdMap([5, "5b", "x", 12]),
}
TOKENS = {
    "int": ["10", "-7", "3", "1099511627776", "999", "0", "-0"],
    "str": ["a", "10", "x y", "-7", "nope", "3"],
    "mixed": ["5", "5b", "x", "12", "13", "zz", "-1"],
}


@pytest.mark.parametrize("kind", sorted(MAPS))
def test_strict_many_reads_tokens_like_the_command_line(kind: str) -> None:
    idmap, tokens = MAPS[kind], TOKENS[kind]
    got = IdParser(idmap).many(tokens, strict=True)
    assert got == cli_ids_for(tokens, idmap)
    assert [type(x) for x in got] == [type(x) for x in cli_ids_for(tokens, idmap)]  # 10 and "10" are different ids


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
    # Python's int() accepted spaces, '+', '_' and non-ASCII digits; ids are read as exact ASCII digits now
    for token in ("+10", "1_0", "\u0661\u0660"):
        assert cli_ids_for([token], MAPS["int"]) == [10]
        with pytest.raises(DataError):
            IdParser(MAPS["int"]).many([token], strict=True)
    # a mixed map holding both 1 and "1": the id as written ("1") wins over its integer form
    both = IdMap([1, "1"])
    assert cli_ids_for(["1"], both) == [1] and IdParser(both).many(["1"], strict=True) == ["1"]


def test_not_an_idmap_is_refused() -> None:
    with pytest.raises(ParameterError, match="'idmap' parameter of IdParser must be an IdMap"):
        IdParser([1, 2, 3])  # type: ignore[arg-type]
