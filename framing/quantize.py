"""Deterministic int8 inference on CPU: per-channel int8 weights, per-row int8 activations.

``torch.ao.quantization.quantize_dynamic`` quantises a Linear layer's input with one scale for
the whole batch, padding included, so a sentence's label depended on its batch-mates (on 118
sentences, two labels flipped between identical runs whose batches differed). Here every row of
the input (one token of one sentence) gets its own scale, and the product is an exact integer
matrix multiply (``torch._int_mm``, int32 accumulation), so a row's output depends on that row and
the weights alone: the same sentence gives the same numbers whatever it is batched with.

The cost of the extra per-row scale is one ``amax`` over the row, small beside the matmul.
"""

from __future__ import annotations

import torch
from torch import nn

_QMAX = 127.0


class Int8Linear(nn.Module):
    """A frozen ``nn.Linear`` with int8 weights (one scale per output channel) and int8 activations
    (one scale per input row), symmetric, computed with an exact int32 matrix multiply."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        w = linear.weight.detach().float()
        scale = (w.abs().amax(dim=1) / _QMAX).clamp(min=1e-12)
        self.in_features, self.out_features = linear.in_features, linear.out_features
        # _int_mm takes (m, k) @ (k, n); keep the weight transposed and contiguous once.
        self.register_buffer("weight_q", torch.round(w / scale[:, None]).clamp(-_QMAX, _QMAX)
                             .to(torch.int8).t().contiguous())
        self.register_buffer("weight_scale", scale)
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().float().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x2 = x.reshape(-1, shape[-1]).float()
        s = (x2.abs().amax(dim=1, keepdim=True) / _QMAX).clamp(min=1e-12)
        xq = torch.round(x2 / s).clamp(-_QMAX, _QMAX).to(torch.int8)
        y = torch._int_mm(xq, self.weight_q).float()
        y = y * s * self.weight_scale
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8 per-row"


def quantize_int8(model: nn.Module, skip: tuple[str, ...] = ()) -> nn.Module:
    """Replace every ``nn.Linear`` in ``model`` (in place) with an :class:`Int8Linear`.

    Args:
        model: A model in eval mode on CPU.
        skip: Qualified module names to leave in fp32 (e.g. a small classification head).
    """
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            if isinstance(child, nn.Linear) and full not in skip:
                setattr(module, child_name, Int8Linear(child))
    return model
