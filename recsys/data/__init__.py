"""The data layer: id maps and the interaction matrix every model consumes."""

from recsys.data._features import FeatureKind
from recsys.data._id_text import IdParser
from recsys.data._idmap import IdMap, as_id_array
from recsys.data._interactions import Histories, Interactions

__all__ = ["FeatureKind", "Histories", "IdMap", "IdParser", "Interactions", "as_id_array"]
