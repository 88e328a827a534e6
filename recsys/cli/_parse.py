"""Command-line values: JSON-ish scalars, NAME=VALUE parameters, comma lists, cut-offs and sizes."""

from __future__ import annotations

import json
from typing import Any

from recsys.cli._errors import UsageError


def parse_value(text: str) -> Any:
    """A command-line value: JSON (numbers, true/false/null, lists, quoted strings), else the bare string.

    >>> parse_value("50"), parse_value("0.5"), parse_value("bm25"), parse_value("none"), parse_value("[1,2]")
    (50, 0.5, 'bm25', None, [1, 2])
    """
    t = text.strip()
    if t.lower() in ("none", "null"):
        return None
    if t.lower() in ("true", "false"):
        return t.lower() == "true"
    try:
        return json.loads(t)
    except json.JSONDecodeError:
        return t


def parse_params(items: list[str] | None, flag: str = "--param") -> dict[str, Any]:
    """``["k=50", "cf.k=20"]`` -> ``{"k": 50, "cf.k": 20}``."""
    out: dict[str, Any] = {}
    for item in items or []:
        name, eq, value = item.partition("=")
        if not eq or not name.strip():
            raise UsageError(f"{flag} expects NAME=VALUE; got {item!r}")
        out[name.strip()] = parse_value(value)
    return out


def parse_list(text: Any, what: str) -> list[str]:
    if isinstance(text, (list, tuple)):
        items = [str(x).strip() for x in text]
    else:
        items = [x.strip() for x in str(text).split(",")]
    items = [x for x in items if x]
    if not items:
        raise UsageError(f"{what} is empty")
    return items


def parse_ks(value: Any) -> list[int]:
    raw = value if isinstance(value, (list, tuple)) else [value] if isinstance(value, int) else parse_list(value, "--k")
    ks: list[int] = []
    for x in raw:
        try:
            k = int(x)
        except (TypeError, ValueError):
            raise UsageError(f"--k must be positive integers (e.g. 10 or 5,10,20); got {value!r}") from None
        if k < 1 or isinstance(x, bool):
            raise UsageError(f"--k must be positive integers (e.g. 10 or 5,10,20); got {value!r}")
        if k not in ks:
            ks.append(k)
    return ks


def parse_size(text: Any) -> tuple[int, int, int]:
    if isinstance(text, (list, tuple)):
        parts = list(text)
    else:
        parts = str(text).replace("x", ",").split(",")
    try:
        u, i, n = (int(str(x).strip()) for x in parts)
    except ValueError:
        raise UsageError(f"--synthetic-size must be three integers USERS,ITEMS,INTERACTIONS; got {text!r}") from None
    if min(u, i, n) < 1:
        raise UsageError(f"--synthetic-size values must be >= 1; got {text!r}")
    return u, i, n
