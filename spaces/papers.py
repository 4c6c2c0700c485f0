"""The papers' own published settings, as `SparsityConfig` values: the search tries those its space
can express right after dense (`--papers first`), so every search answers "does the searched pick beat
what the paper would have had me set by hand?".

Each setting cites the file and commit it comes from (read, not copied; the test file
tests/test_reference_ports.py ports the reference mechanisms and compares them with ours). Values that
our defaults already equal (e.g. the warm-up + cosine schedule's 10 and 100 of 300 epochs, the 5%
forgetting swap every 10% of training) are not repeated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trilevel.core.config import SparsityConfig


@dataclass(frozen=True)
class PaperSetting:
    """One paper's hand-set configuration. `name` is what trial records say (`origin: paper:<name>`)."""

    name: str
    title: str
    source: str  # repository, file and commit the values come from
    sparsity: dict[str, Any] = field(default_factory=dict)  # SparsityConfig fields that differ from dense

    def config(self) -> SparsityConfig:
        return SparsityConfig(**self.sparsity)


PAPERS: tuple[PaperSetting, ...] = (
    PaperSetting(
        "tri-level-deit-t", "Tri-Level E-ViT, DeiT-T (Kong et al., AAAI 2023)",
        "ZLKong/Tri-Level-ViT README.md DeiT-T command (--keep_ratio 0.9 --attn_ratio 0.1 --remove-n 64058 = "
        "5% per swap), main.py (20% set aside, swaps every 30 of 300 epochs, at most 5), engine.py (keep 1.0 "
        "for 10 epochs, cosine over 100), commit 2bf7f80a4674eb33ae1ff4b4c45ade61746a76f8",
        {"example_keep": 0.8, "example_criterion": "forgetting", "token_keep": 0.9, "token_mode": "attentive",
         "attention_keep": 0.1, "schedule": "warmup_cosine"},
    ),
    PaperSetting(
        "evit-0.7", "EViT keep rate 0.7 with the fused token (Liang et al., ICLR 2022)",
        "youweiliang/evit run_code.sh, DeiT-S --base_keep_rate 0.7 --fuse_token --shrink_start_epoch 10 "
        "--shrink_epochs 100 (blocks 3, 6, 9; EViT ships no DeiT-T setting), commit 5ca95a7",
        {"token_keep": 0.7, "token_mode": "attentive", "token_fuse": True, "schedule": "warmup_cosine"},
    ),
    PaperSetting(
        "infobatch-0.5", "InfoBatch prune ratio 0.5, delta 0.875 (Qin et al., ICLR 2024)",
        "NUS-HPC-AI-Lab/InfoBatch examples/cifar_example.py --ratio 0.5 --delta 0.875, "
        "commit 8bbb012c256c9eb4de3bb209f8a5e73899de8d02",
        {"example_keep": 0.5, "example_criterion": "loss", "example_anneal": 0.125},
    ),
    PaperSetting(
        "pss-cyclic", "Patch Sampling Schedule, cyclic 0.8 -> -0.1 drop, magnitude (McDanel & Huynh 2022)",
        "BradMcDanel/pss deit/configs/deit-s-224/magnitude_cyclic_80_0.sh and deit/patch_scheduler.py, "
        "commit 90c12bac93cb30457f79b938eb1c123be96e83ad",
        {"token_keep": 0.2, "token_mode": "input", "token_sampling": "magnitude", "schedule": "cyclic",
         "schedule_step": 0.2, "schedule_end_drop": -0.1},
    ),
)
