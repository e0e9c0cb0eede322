"""The distillation losses the methods share."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .evaluation import mask_logits


def masked_distillation(student_logits: torch.Tensor, teacher_logits: torch.Tensor, forget: torch.Tensor,
                        temperature: float) -> torch.Tensor:
    """Cross-entropy to the teacher's softmax with the forget classes removed (scaled by T^2)."""
    target = F.softmax(mask_logits(teacher_logits.detach(), forget) / temperature, dim=1)
    log_p = F.log_softmax(student_logits / temperature, dim=1)
    return -(target * log_p).sum(1).mean() * temperature ** 2


def distillation(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher || student) at ``temperature`` (scaled by T^2), the plain knowledge-distillation loss."""
    log_p = F.log_softmax(student_logits / temperature, dim=1)
    target = F.softmax(teacher_logits.detach() / temperature, dim=1)
    return F.kl_div(log_p, target, reduction="batchmean") * temperature ** 2
