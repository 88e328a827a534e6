"""Deep models in PyTorch on the shared data layer, trained by one trainer: CTR rankers (DeepFM, DIN),
multi-task rankers (SharedBottom, MMoE, PLE, ESMM) and sequential next-item models (SASRec, GRU4Rec).

See :mod:`recsys.models.deep.trainer` for devices, mixed precision, early
stopping and distributed training with ``torchrun``, and
:mod:`recsys.models.deep.features` for the field specifications.
"""

from recsys.models.deep.deepfm import DeepFM
from recsys.models.deep.din import DIN
from recsys.models.deep.features import FieldSpec, encode_fields
from recsys.models.deep.gru4rec import GRU4Rec
from recsys.models.deep.multitask import ESMM, PLE, MMoE, SharedBottom
from recsys.models.deep.sasrec import SASRec
from recsys.models.deep.trainer import TrainConfig, Trainer, TrainResult, is_main_process, resolve_device

__all__ = ["DIN", "DeepFM", "ESMM", "FieldSpec", "GRU4Rec", "MMoE", "PLE", "SASRec", "SharedBottom", "TrainConfig", "TrainResult", "Trainer", "encode_fields", "is_main_process", "resolve_device"]
