"""The OpenAPI document of the service is unchanged by refactoring: compared with a saved copy.

The saved documents (``tests/fixtures/openapi/*.json``) were generated from the service before its
schemas and error handlers moved to their own modules. When the API changes on purpose, regenerate
them with ``python -m tests.serving.test_openapi`` and review the diff.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require

require("fastapi")

from recsys.serving import create_app  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "openapi"

#: Two configurations: the defaults, and limits that appear in the document (maxima, maxItems, descriptions).
CONFIGS: dict[str, dict[str, Any]] = {
    "default": {},
    "limits": {"max_k": 50, "max_history": 20, "max_batch": 5, "max_batch_entries": 60, "max_ids": 30, "on_unknown": "popular"},
}


def openapi(options: dict[str, Any]) -> dict[str, Any]:
    """The service's OpenAPI document, without the library version (which changes with every release)."""
    # Building the document does not load the model: the path need not exist.
    spec: dict[str, Any] = create_app("models", poll_interval=0, **options).openapi()
    spec["info"].pop("version")
    return spec


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_openapi_document_is_unchanged(name: str) -> None:
    saved = json.loads((FIXTURES / f"{name}.json").read_text())
    now = openapi(CONFIGS[name])
    assert now == saved
    # the order of paths, operations and schemas is what /docs shows: it stays too
    assert json.dumps(now) == json.dumps(saved)


def test_the_saved_documents_differ_where_the_limits_do() -> None:
    # guards against a fixture that no longer reflects the options (both files the same document)
    default, limits = (json.loads((FIXTURES / f"{n}.json").read_text()) for n in ("default", "limits"))
    k_of = lambda spec: next(p for p in spec["paths"]["/recommend"]["get"]["parameters"] if p["name"] == "k")  # noqa: E731
    assert k_of(default)["schema"]["maximum"] == 1000 and k_of(limits)["schema"]["maximum"] == 50


if __name__ == "__main__":
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for name, options in CONFIGS.items():
        (FIXTURES / f"{name}.json").write_text(json.dumps(openapi(options), indent=1) + "\n")
