"""Tri-Level sparse ViT training on stock timm models.

    from trilevel.core import SparsityConfig, RunConfig, sparsify, train
    model = sparsify(timm.create_model("deit_tiny_patch16_224"), SparsityConfig(token_keep=0.7))
"""

from .config import RunConfig, SparsityConfig
from .errors import UserError
from .metrics import RunMetrics
from .lazy import lazy_exports

# Imported on first use: these load torch and timm (see lazy.py).
__getattr__ = lazy_exports(__name__, {
    "ExamplePruner": "examples", "set_keep": "patch", "sparsify": "patch", "state_of": "patch",
    "keep_at": "schedules", "Trainer": "trainer", "TrainingDiverged": "trainer", "train": "trainer",
})

__all__ = [
    "ExamplePruner", "RunConfig", "RunMetrics", "SparsityConfig", "Trainer", "TrainingDiverged", "UserError",
    "keep_at", "set_keep", "sparsify", "state_of", "train",
]
