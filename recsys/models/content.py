"""Former home of the content-based models; they live in :mod:`recsys.models.content_based`.

Kept so ``from recsys.models.content import ContentBased, Hybrid`` works, and
so the name artifacts store (``"recsys.models.content.ContentBased"``) keeps
pointing at an importable class. The text encoders are :mod:`recsys.content`.
"""

from __future__ import annotations

from recsys.models.content_based import Cold, ContentBased, Hybrid, Normalise

__all__ = ["Cold", "ContentBased", "Hybrid", "Normalise"]
