"""Deep CTR models in PyTorch (DeepFM, DIN, and the multi-task SharedBottom, MMoE, PLE, ESMM) on the shared data layer, trained by one trainer.

See :mod:`recsys.models.deep.trainer` for devices, mixed precision, early
stopping and distributed training with ``torchrun``, and
:mod:`recsys.models.deep.features` for the field specifications.
"""

from recsys.models.deep.deepfm import DeepFM
from recsys.models.deep.din import DIN
from recsys.models.deep.features import FieldSpec, encode_fields
from recsys.models.deep.multitask import ESMM, PLE, MMoE, SharedBottom
from recsys.models.deep.trainer import TrainConfig, Trainer, TrainResult, is_main_process, resolve_device

__all__ = ["DIN", "DeepFM", "ESMM", "FieldSpec", "MMoE", "PLE", "SharedBottom", "TrainConfig", "TrainResult", "Trainer", "encode_fields", "is_main_process", "resolve_device"]
