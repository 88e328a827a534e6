"""The names of interaction values and of their re-weightings, defined once for every model.

Three different questions, three names:

* :data:`Values` (ALS ``values=``): where an interaction's value comes from,
  ``"binary"`` (1), ``"weight"`` (the interaction weight, e.g. a play
  count) or ``"rating"`` (the explicit rating).
* :data:`Weighting` (ItemKNN, UserKNN and ALS ``weighting=``): how those
  values are re-weighted before use, as in text retrieval with users as
  documents and items as terms: ``"none"``, ``"tfidf"`` or ``"bm25"``.
* :data:`ProfileWeighting` (ContentBased ``weighting=``): how much each
  interaction counts in a user's content profile, ``"weight"``,
  ``"rating"`` or ``"centered"`` (the rating minus the user's mean).
"""

from __future__ import annotations

from typing import Literal

Values = Literal["binary", "weight", "rating"]
VALUES: tuple[Values, ...] = ("binary", "weight", "rating")

Weighting = Literal["none", "tfidf", "bm25"]
WEIGHTINGS: tuple[Weighting, ...] = ("none", "tfidf", "bm25")

ProfileWeighting = Literal["weight", "rating", "centered"]
PROFILE_WEIGHTINGS: tuple[ProfileWeighting, ...] = ("weight", "rating", "centered")

__all__ = ["PROFILE_WEIGHTINGS", "VALUES", "WEIGHTINGS", "ProfileWeighting", "Values", "Weighting"]
