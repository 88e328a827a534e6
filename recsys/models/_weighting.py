"""The names of interaction values and of their re-weightings, defined once for every model.

Two different questions, two names:

* :data:`Values` (ALS ``values=``): where an interaction's value comes from,
  ``"binary"`` (1), ``"weight"`` (the interaction weight, e.g. a play
  count) or ``"rating"`` (the explicit rating).
* :data:`ProfileValues` (ContentBased ``values=``): the same question for the
  weight of an interaction in a user's content profile, ``"weight"``,
  ``"rating"`` or ``"centered"`` (the rating minus the user's mean).
* :data:`Weighting` (ItemKNN, UserKNN and ALS ``weighting=``): how those
  values are re-weighted before use, as in text retrieval with users as
  documents and items as terms: ``"none"``, ``"tfidf"`` or ``"bm25"``.
"""

from __future__ import annotations

from typing import Literal

Values = Literal["binary", "weight", "rating"]
VALUES: tuple[Values, ...] = ("binary", "weight", "rating")

Weighting = Literal["none", "tfidf", "bm25"]
WEIGHTINGS: tuple[Weighting, ...] = ("none", "tfidf", "bm25")

ProfileValues = Literal["weight", "rating", "centered"]
PROFILE_VALUES: tuple[ProfileValues, ...] = ("weight", "rating", "centered")

__all__ = ["PROFILE_VALUES", "VALUES", "WEIGHTINGS", "ProfileValues", "Values", "Weighting"]
