"""Training losses by name: ``loss = "..."`` in a training config picks one of :data:`LOSSES`.

Each loss is a function ``(logits, labels, ctx) -> scalar tensor``; ``ctx`` is a
:class:`LossContext` carrying what some losses need (class weights, the teacher's logits for the
batch, the config). Adding a loss is one :func:`register_loss` entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

LOSSES: dict[str, Callable] = {}


@dataclass
class LossContext:
    class_weights: Any = None
    """Tensor (n_labels,): scikit-learn's "balanced" weights, ``n / (n_labels * count)``."""
    teacher_logits: Any = None
    """Tensor (batch, n_labels) of the teacher's raw logits, for distillation."""
    label_smoothing: float = 0.1
    temperature: float = 2.0
    alpha: float = 0.7
    """Share of the distillation term; the rest is class-balanced cross-entropy on the gold labels."""


def register_loss(name: str):
    def wrap(fn):
        LOSSES[name] = fn
        return fn
    return wrap


def get_loss(name: str) -> Callable:
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; expected one of {sorted(LOSSES)}")
    return LOSSES[name]


@register_loss("ce")
def cross_entropy(logits, labels, ctx: LossContext):
    import torch.nn.functional as F

    return F.cross_entropy(logits, labels)


@register_loss("balanced-ce")
def balanced_cross_entropy(logits, labels, ctx: LossContext):
    import torch.nn.functional as F

    return F.cross_entropy(logits, labels, weight=ctx.class_weights)


@register_loss("label-smoothing")
def label_smoothing(logits, labels, ctx: LossContext):
    import torch.nn.functional as F

    return F.cross_entropy(logits, labels, weight=ctx.class_weights, label_smoothing=ctx.label_smoothing)


@register_loss("distill")
def distillation(logits, labels, ctx: LossContext):
    """Hinton et al.'s distillation: KL to the teacher's softened distribution (times T²) plus gold CE."""
    import torch.nn.functional as F

    if ctx.teacher_logits is None:
        raise ValueError("loss 'distill' needs a teacher: set `teacher` in the training config")
    t = ctx.temperature
    soft = F.kl_div(F.log_softmax(logits / t, dim=-1), F.softmax(ctx.teacher_logits / t, dim=-1),
                    reduction="batchmean") * (t * t)
    hard = F.cross_entropy(logits, labels, weight=ctx.class_weights)
    return ctx.alpha * soft + (1 - ctx.alpha) * hard
