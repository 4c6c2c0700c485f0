"""Tri-Level sparse ViT training on stock timm models.

    from trilevel.core import SparsityConfig, RunConfig, sparsify, train
    model = sparsify(timm.create_model("deit_tiny_patch16_224"), SparsityConfig(token_keep=0.7))
"""

from .config import RunConfig, SparsityConfig
from .errors import UserError
from .examples import ExamplePruner
from .patch import set_keep, sparsify, state_of
from .schedules import keep_at
from .trainer import Trainer, TrainingDiverged, train

__all__ = [
    "ExamplePruner", "RunConfig", "SparsityConfig", "Trainer", "TrainingDiverged", "UserError",
    "keep_at", "set_keep", "sparsify", "state_of", "train",
]
