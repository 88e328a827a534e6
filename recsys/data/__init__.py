"""The data layer: id maps and the interaction matrix every model consumes."""

from recsys.data._features import FeatureKind, to_pandas
from recsys.data._id_text import IdParser
from recsys.data._idmap import IdLookup, IdMap, as_id_array
from recsys.data._interactions import Histories, Interactions
from recsys.data._validation import id_column

__all__ = [
    "FeatureKind",
    "Histories",
    "IdLookup",
    "IdMap",
    "IdParser",
    "Interactions",
    "as_id_array",
    "id_column",
    "to_pandas",
]
