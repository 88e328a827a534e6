"""The service's request and response schemas (pydantic models), as the OpenAPI document shows them.

The response models and the error body are fixed; the request bodies carry this service's limits
(``max_k``, ``max_ids``...), so :func:`request_models` builds them once per :class:`ServeConfig`.
Needs the ``serve`` extra (pydantic comes with fastapi).
"""

import json
import re
from typing import Annotated, Any, Literal, Self

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainValidator, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError

from recsys.serving._config import ServeConfig

_I64 = np.iinfo(np.int64)
_F32_MAX = float(np.finfo(np.float32).max)


# -- field types ---------------------------------------------------------------------------------------


def _json_id(value: Any) -> Any:
    """A JSON id: an integer in int64's range (the widest integer id a model stores) or a string."""
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool) and _I64.min <= value <= _I64.max):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        raise PydanticCustomError("id_range", "An integer id must be within int64 ({low}..{high})", {"low": int(_I64.min), "high": int(_I64.max)})
    shown = json.dumps(value)[:40] if isinstance(value, (bool, float, type(None))) else ("an array" if isinstance(value, list) else "an object")
    raise PydanticCustomError("id_type", "An id must be a JSON integer or string; got {got}", {"got": shown})


Id = Annotated[
    Any,
    PlainValidator(_json_id),
    WithJsonSchema({"anyOf": [{"type": "integer", "minimum": int(_I64.min), "maximum": int(_I64.max)}, {"type": "string"}]}),
]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
#: Ratings are stored as float32: larger magnitudes would become infinite.
Rating = Annotated[float, Field(allow_inf_nan=False, ge=-_F32_MAX, le=_F32_MAX)]
OnUnknownUser = Literal["error", "skip", "popular"]
_INT_TEXT = re.compile(r"-?[0-9]+")


def _integer_text(value: Any) -> Any:
    """A query value meant as an integer must be written in digits: "5.0", "true" or "5_0" are refused."""
    if isinstance(value, str) and not _INT_TEXT.fullmatch(value):
        raise PydanticCustomError(
            "int_parsing", "Input should be a valid integer, written in digits (e.g. 10); got {got}", {"got": repr(value[:40])}
        )
    return value


#: On an integer query parameter (``k``), after its ``Query(...)``: digits only; pydantic converts and range-checks.
DIGITS = BeforeValidator(_integer_text)


# -- response models ---------------------------------------------------------------------------------


class ScoredItem(BaseModel):
    item: Id = Field(description="External item id (the model's id type: integer or string).")
    score: float = Field(description="Model score; higher is better. Only the order is meaningful across models.")
    rank: int = Field(description="1 for the best item.")


class Recommendations(BaseModel):
    user: Id | None = Field(None, description="The user asked for (None for a history).")
    items: list[ScoredItem]
    known_user: bool = Field(True, description="False when the user was not in the training data.")
    fallback: str | None = Field(None, description="'popular' or 'skip' when the unknown-user fallback answered.")
    model_version: str


class BatchResponse(BaseModel):
    results: list[Recommendations]
    model_version: str


class SimilarItems(BaseModel):
    item: Id
    items: list[ScoredItem]
    model_version: str


class FieldError(BaseModel):
    field: str = Field(description="Where: a query parameter or a dotted path into the JSON body (items.0).")
    message: str
    type: str


class ErrorBody(BaseModel):
    """Every 4xx and 5xx answer of this service."""

    error: str = Field(
        description="Machine-readable code: unknown_id, invalid_request, invalid_value, malformed_json, "
        "not_supported, not_found, unknown_version, method_not_allowed, body_too_large, too_many_ids, "
        "batch_too_large, unsupported_media_type, model_unavailable, internal_error."
    )
    detail: str = Field(description="What was wrong, naming the parameter or field, and what is expected.")
    errors: list[FieldError] | None = Field(None, description="invalid_request (422): one entry per problem.")


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses (all ``ErrorBody``)."""
    what = {
        400: "Malformed JSON, or an operation this model does not support",
        404: "Unknown user or item",
        413: "Body, id list, history or batch too large",
        415: "The body is not JSON",
        422: "Invalid parameter or body (a repeated or unknown query parameter included)",
        503: "No model loaded",
    }
    return {s: {"model": ErrorBody, "description": what[s]} for s in statuses}


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    ready: bool
    version: str | None = None
    detail: str | None = None


# -- request bodies: they carry the service's limits ------------------------------------------------------


def request_models(cfg: ServeConfig) -> tuple[type[BaseModel], type[BaseModel]]:
    """The request bodies of ``POST /recommend`` and ``POST /recommend/batch`` with ``cfg``'s limits.

    The limits appear in the OpenAPI schema (``maximum`` of ``k``, ``maxItems`` of the id lists);
    ``k`` is validated here, list lengths by the routes (a 413 naming the option).

    Parameters
    ----------
    cfg : ServeConfig
        The service's configuration.

    Returns
    -------
    (HistoryRequest, BatchRequest)
        Two pydantic model classes.

    Examples
    --------
    >>> HistoryRequest, BatchRequest = request_models(ServeConfig.from_options("models", max_k=50))
    >>> HistoryRequest(items=[1, "a"], k=5).k, BatchRequest.model_json_schema()["properties"]["k"]["maximum"]
    (5, 50)
    """
    k_field = Field(10, ge=1, le=cfg.max_k, description=f"Length of the list, 1..{cfg.max_k} (an integer literal: 5, not 5.0, '5' or true).")

    def ids(what: str) -> Any:
        # maxItems is documented, not validated by pydantic: more ids are a 413 naming the option
        return Field(
            None, description=f"{what} (at most {cfg.max_ids} ids, max_ids; more: 413).", json_schema_extra={"maxItems": cfg.max_ids}
        )

    class HistoryRequest(BaseModel):
        """Recommendations for a user absent from the training data, from their item history (fold-in)."""

        # strict: k is a JSON integer (not true, "5" or 5.0), exclude_seen a JSON boolean
        model_config = ConfigDict(extra="forbid", strict=True)
        items: list[Id] = Field(
            min_length=1,
            description=f"The user's item history (at most {cfg.max_history} ids, max_history; more: 413).",
            json_schema_extra={"maxItems": cfg.max_history},
        )
        ratings: list[Rating] | None = Field(None, description="Aligned with items, for models that use ratings (float32 range).")
        timestamps: list[FiniteFloat] | None = Field(None, description="Aligned with items, for models that use time.")
        k: int = k_field
        exclude_seen: bool = Field(True, description="Never recommend the history's items.")
        candidates: list[Id] | None = ids("Restrict recommendations to these items")
        exclude_items: list[Id] | None = ids("Never recommend these items")
        on_unknown_items: Literal["error", "skip", "popular"] = Field(
            "error",
            description="History items the model does not know: 404, or ignore them; 'popular' also ignores them and "
            "answers with the most popular items when nothing of the history is left to fold in.",
        )

        @model_validator(mode="after")
        def _aligned(self) -> Self:
            for name in ("ratings", "timestamps"):
                values = getattr(self, name)
                if values is not None and len(values) != len(self.items):
                    raise ValueError(f"{name} must align with items: {len(values)} values for {len(self.items)} items")
            return self

    class BatchRequest(BaseModel):
        """Recommendations for many users known at training time."""

        model_config = ConfigDict(extra="forbid", strict=True)
        users: list[Id] = Field(
            min_length=1,
            description=f"Distinct user ids (at most {cfg.max_batch}, max_batch; more: 413; users x k at most "
            f"{cfg.max_batch_entries}, max_batch_entries).",
            json_schema_extra={"maxItems": cfg.max_batch, "uniqueItems": True},
        )
        k: int = k_field
        exclude_seen: bool = True
        items: list[Id] | None = ids("Restrict recommendations to these items")
        exclude_items: list[Id] | None = ids("Never recommend these items")
        on_unknown: OnUnknownUser | None = Field(None, description=f"Unknown users; default {cfg.on_unknown!r}.")

    return HistoryRequest, BatchRequest


__all__ = [
    "DIGITS",
    "BatchResponse",
    "ErrorBody",
    "FieldError",
    "FiniteFloat",
    "Health",
    "Id",
    "OnUnknownUser",
    "Rating",
    "Ready",
    "Recommendations",
    "ScoredItem",
    "SimilarItems",
    "error_responses",
    "request_models",
]
