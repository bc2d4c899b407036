"""int8 inference through CTranslate2 for pooled models on BERT and MPNet encoders (CPU).

CTranslate2 runs a transformer encoder with per-channel int8 weights and *per-row* int8
activations (each token's row gets its own scale), like :mod:`framing.quantize`, but in fused
C++ kernels: on the fast model (all-MiniLM-L6-v2) it labels about twice as many sentences per
second as the torch int8 path. Its int8 is not the same arithmetic, though: on the fast model
its labels agree with fp32 on 98.0-99.0% of the held-out and dev sentences (the torch int8 path:
99.5% of 1,500 bench sentences), which costs 0.008-0.013 macro-F1 on the corpus splits (0.000 on
real_dev); CTranslate2's own fp32 and int16 modes agree 100% and 98.9-99.3%, at 40% and 47% of
its int8 speed. On the accurate model (all-mpnet-base-v2) the change is +0.005 on held-out
domains, +0.003 on world disputes and 0.000 on real_dev (0.840/0.843/0.817 in fp32).
``--int8-engine torch`` is the choice where the fast model's labels matter more than speed.

Batches hold one token length (:func:`framing.model.length_batches`),
so nothing is padded; the encoder's hidden states of a sentence are then bit-identical whatever it
is batched with, and pooling and the head run here per row in numpy, which keeps the logits
bit-identical too (a BLAS matrix product over the batch would not: its kernel depends on the
batch size).

The converted model is derived from the model's own safetensors weights (the LoRA update merged
in) on first use and cached under ``$FRAMING_CACHE/ctranslate2/``, keyed by the model's content
hash and the CTranslate2 version. Conversion writes to a temporary folder renamed into place; a
marker records the SHA-256 of CTranslate2's weight file, checked at every load, so a damaged cache
entry is detected and rebuilt. CTranslate2's ``model.bin`` is its own flat binary format, not a
pickle.

Which encoders convert is an architecture setting of each :class:`framing.encoder.EncoderSpec`
(``ctranslate2=True``). BERT models use CTranslate2's own converter. CTranslate2 has none for
MPNet (all-mpnet-base-v2, the accurate model's encoder), so :func:`_register_mpnet` adds one. MPNet
is a post-norm BERT-style encoder with two kinds of position information: T5's bucketed relative
attention bias (32 buckets, max distance 128, computed once and shared by every layer), which
CTranslate2's encoder supports, and RoBERTa-style absolute position embeddings, which its encoder
drops whenever a relative bias is present. The absolute table therefore goes in as a second input
embedding, summed with the word embeddings (as BERT's token types are), and each batch passes the
positions 0..L-1 as its "token types". On the fp32 weights the hidden states match transformers'
MPNetModel to 2e-6 (tested on a tiny random MPNet).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

ENGINES = ("auto", "torch", "ctranslate2")
"""``engine`` values of :meth:`framing.Classifier.load` (``--int8-engine``)."""

PIP = "pip install 'ctranslate2>=4.5'"
_MARKER = "framing-ct2.json"
_FORMAT = 1  # of a cache entry; an entry of another format is rebuilt
_FILES = ("model.bin", "config.json", "head.safetensors", "tokenizer/tokenizer_config.json")


def installed() -> bool:
    try:
        import ctranslate2  # noqa: F401
    except ImportError:
        return False
    return True


def supports(meta: dict) -> bool:
    """Whether a model (its ``framing.json``) can run on CTranslate2: a pooled model on an encoder
    whose spec says it converts."""
    from framing.encoder import ENCODERS

    spec = ENCODERS.get(meta.get("encoder") or "")
    return meta.get("kind") == "pooled" and spec is not None and spec.ctranslate2


def resolve_engine(engine: str, meta: dict, *, device: str, quantize: bool, source: str = "") -> str:
    """The int8 engine a model will run on: ``torch`` or ``ctranslate2`` (``none`` when not int8 on CPU).

    ``auto`` takes CTranslate2 where it is installed and the model converts, else torch.
    Asking for ``ctranslate2`` where it cannot run is an error that says why.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {list(ENGINES)}, got {engine!r}")
    if not quantize or device != "cpu" or meta.get("kind") not in ("pooled", "transformer"):
        if engine == "ctranslate2":
            raise ValueError("engine='ctranslate2' runs int8 on CPU only: add quantize=True (--quantize) "
                             "and device='cpu'")
        return "none"
    if engine == "torch":
        return "torch"
    ok = supports(meta)
    if engine == "ctranslate2":
        if not ok:
            raise ValueError(f"{source or 'this model'}: CTranslate2 runs pooled models on BERT and MPNet encoders; "
                             f"this one is kind {meta.get('kind')!r} on {meta.get('encoder')!r} "
                             "(use engine 'torch' or 'auto')")
        if not installed():
            raise ImportError(f"engine 'ctranslate2' needs the ctranslate2 package: {PIP}")
        return "ctranslate2"
    return "ctranslate2" if ok and installed() else "torch"


def _bin_sha256(folder: Path) -> str:
    from framing.encoder import sha256_file

    return sha256_file(folder / "model.bin")


def _cache_info(folder: Path) -> dict | None:
    """The marker of a complete, undamaged cache entry, else None."""
    try:
        info = json.loads((folder / _MARKER).read_text())
        complete = info.get("format") == _FORMAT and all((folder / f).exists() for f in _FILES)
        return info if complete and info.get("model_bin_sha256") == _bin_sha256(folder) else None
    except (OSError, ValueError):
        return None


def cache_entry(key: str, cache: Path | None = None) -> Path:
    """Where the conversion of the model with content hash ``key`` is cached."""
    import ctranslate2

    from framing.encoder import cache_dir

    return (cache or cache_dir()) / "ctranslate2" / f"{key[:16]}-ct2-{ctranslate2.__version__}-int8"


def _register_mpnet() -> None:
    """Register a CTranslate2 converter for transformers' ``MPNetModel`` (see the module docstring)."""
    from ctranslate2.converters import transformers as ct2t
    from ctranslate2.specs import common_spec, transformer_spec

    # Registered every time, over any loader CTranslate2 may ship later: the backend feeds this
    # layout (positions as token types), so the conversion must be this one.
    @ct2t.register_loader("MPNetConfig")
    class MPNetLoader(ct2t.ModelLoader):
        @property
        def architecture_name(self):
            return "MPNetModel"

        def get_model_spec(self, model):
            cfg = model.config
            if cfg.hidden_act not in ct2t._SUPPORTED_ACTIVATIONS:
                raise ValueError(f"MPNet with activation {cfg.hidden_act!r} does not convert to CTranslate2")
            spec = transformer_spec.TransformerEncoderModelSpec(transformer_spec.TransformerEncoderSpec(
                cfg.num_hidden_layers, cfg.num_attention_heads, pre_norm=False,
                activation=ct2t._SUPPORTED_ACTIVATIONS[cfg.hidden_act], layernorm_embedding=True,
                relative_attention_bias=True, num_source_embeddings=2,
                embeddings_merge=common_spec.EmbeddingsMerge.ADD))
            enc = spec.encoder
            enc.scale_embeddings = False
            self.set_embeddings(enc.embeddings[0], model.embeddings.word_embeddings)
            # Unpadded, MPNet's position i reads row padding_idx + 1 + i of its table.
            positions = model.embeddings.position_embeddings
            enc.embeddings[1].weight = positions.weight[positions.padding_idx + 1:]
            self.set_layer_norm(enc.layernorm_embedding, model.embeddings.LayerNorm)
            bias = model.encoder.relative_attention_bias.weight  # (buckets, heads), shared by all layers
            for layer_spec, layer in zip(enc.layer, model.encoder.layer):
                att = layer.attention
                qkv = [common_spec.LinearSpec() for _ in range(3)]
                for part, linear in zip(qkv, (att.attn.q, att.attn.k, att.attn.v)):
                    self.set_linear(part, linear)
                ct2t.utils.fuse_linear(layer_spec.self_attention.linear[0], qkv)
                self.set_linear(layer_spec.self_attention.linear[1], att.attn.o)
                self.set_layer_norm(layer_spec.self_attention.layer_norm, att.LayerNorm)
                layer_spec.self_attention.relative_attention_bias = bias
                # MPNetEncoder.relative_position_bucket's max_distance (a default argument there).
                layer_spec.self_attention.relative_attention_max_distance = np.dtype("int32").type(128)
                self.set_linear(layer_spec.ffn.linear_0, layer.intermediate.dense)
                self.set_linear(layer_spec.ffn.linear_1, layer.output.dense)
                self.set_layer_norm(layer_spec.ffn.layer_norm, layer.output.LayerNorm)
            return spec

        def get_vocabulary(self, model, tokenizer):
            tokens = super().get_vocabulary(model, tokenizer)
            return tokens + [f"<extra_id_{i}>" for i in range(model.config.vocab_size - len(tokens))]

        def set_vocabulary(self, spec, tokens):
            spec.register_vocabulary(tokens)

        def set_config(self, config, model, tokenizer):
            config.unk_token = tokenizer.unk_token
            config.layer_norm_epsilon = model.config.layer_norm_eps


def _position_rows(encoder) -> int:
    """How many positions the converted encoder takes (MPNet, like RoBERTa, reserves the first
    padding_idx + 1 rows of its table; its padding_idx is 1 whatever the tokenizer says)."""
    table = encoder.embeddings.position_embeddings
    if encoder.config.model_type == "mpnet":
        return table.num_embeddings - table.padding_idx - 1
    return table.num_embeddings


def convert(pooled, tokenizer, target: Path, quantization: str | None = "int8") -> Path:
    """Convert a :class:`framing.pooled.PooledClassifier` (LoRA merged) to CTranslate2 at ``target``,
    atomically: encoder, tokenizer, head and a marker with the weights' SHA-256. ``quantization``
    is CTranslate2's (``None`` keeps fp32; the tests compare that with transformers)."""
    return _convert(lambda src: _stage(pooled, tokenizer, src), target, quantization)


def _stage(pooled, tokenizer, src: Path) -> dict:
    """Write what the converter reads (encoder, tokenizer) and the head to ``src``; return the marker's fields."""
    from safetensors.numpy import save_file

    config = pooled.encoder.config
    positions_as_types = config.model_type == "mpnet"
    if not positions_as_types and not hasattr(config, "position_embedding_type"):
        # transformers 5 dropped the attribute (BERT's positions are absolute); the converter checks it.
        config.position_embedding_type = "absolute"
    pooled.encoder.save_pretrained(src, safe_serialization=True)
    tokenizer.save_pretrained(src)
    save_file({"weight": pooled.head.weight.detach().float().numpy().copy(),
               "bias": pooled.head.bias.detach().float().numpy().copy()}, str(src / "head.safetensors"))
    return {"pooling": pooled.pooling, "max_position_embeddings": _position_rows(pooled.encoder),
            "positions_as_token_types": positions_as_types}


def _convert(stage, target: Path, quantization: str | None) -> Path:
    """Run ``stage(src)`` (it writes the encoder, tokenizer and head to ``src``), convert, and
    rename the result into ``target``. A caller that builds the torch model inside ``stage`` has
    freed it before the converter loads its own copy (peak memory: one fp32 model, not two)."""
    import gc

    from ctranslate2.converters import TransformersConverter

    from transformers.utils import logging as hf_logging

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}-") as tmp:
        src, out = Path(tmp) / "hf", Path(tmp) / "ct2"
        fields = stage(src)
        gc.collect()
        if fields["positions_as_token_types"]:
            _register_mpnet()
        # The converter reloads the encoder with transformers, whose report on the (unused) pooler
        # weights would only confuse a user: keep it quiet.
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        try:
            TransformersConverter(str(src), low_cpu_mem_usage=True).convert(str(out), quantization=quantization)
        finally:
            hf_logging.set_verbosity(verbosity)
        shutil.copytree(src, out / "tokenizer", ignore=shutil.ignore_patterns("*.safetensors", "config.json"))
        os.replace(src / "head.safetensors", out / "head.safetensors")
        (out / _MARKER).write_text(json.dumps({"format": _FORMAT, "model_bin_sha256": _bin_sha256(out), **fields})
                                   + "\n")
        if target.exists():  # a damaged entry
            shutil.rmtree(target)
        try:
            os.replace(out, target)
        except OSError:
            if _cache_info(target) is None:  # not a concurrent process that won the race
                raise
    return target


class CT2Backend:
    """Inference for a ``pooled`` model on CTranslate2 int8 (CPU), loaded from its cached conversion.

    Batches (one token length each) run concurrently on ``threads`` CTranslate2 workers of one
    thread each: for encoder batches of this size that is about twice the rate of one batch at a
    time on ``threads`` threads (measured on the fast model, 2 cores: 900-1,000 against 450
    sentences/s, model only). Each batch still runs single-threaded through the same kernels, so
    the numbers do not depend on the thread count either.
    """

    kind = "pooled"

    def __init__(self, folder: Path, info: dict, max_length: int, encoder: str | None, threads: int):
        import ctranslate2
        from safetensors.numpy import load_file
        from transformers import AutoTokenizer

        self.folder = folder
        self.tokenizer = AutoTokenizer.from_pretrained(folder / "tokenizer")
        self.max_length = max_length
        self.encoder = encoder
        self.truncated = 0
        self.pooling = info.get("pooling", "mean")
        self._positions = int(info.get("max_position_embeddings", max_length))
        self._positions_as_types = bool(info.get("positions_as_token_types", False))
        head = load_file(str(folder / "head.safetensors"))
        self.weight, self.bias = np.ascontiguousarray(head["weight"]), np.ascontiguousarray(head["bias"])
        self.threads = max(1, int(threads))
        self.model = ctranslate2.Encoder(str(folder), device="cpu", compute_type="int8", intra_threads=1,
                                         inter_threads=self.threads)
        self._pool = None

    @classmethod
    def load(cls, path: Path, meta: dict, device: str, quantize: bool = True) -> "CT2Backend":
        """From the cache when its entry is sound; otherwise load the model with torch (all its checks,
        the encoder's SHA-256 included), convert it and cache the result."""
        import torch

        from framing.paths import model_content_hash

        target = cache_entry(model_content_hash(path))
        info = _cache_info(target)
        if info is None:
            def stage(src: Path) -> dict:
                from framing.pooled import PooledBackend

                torch_backend = PooledBackend.load(path, meta, "cpu", quantize=False)
                return _stage(torch_backend.model, torch_backend.tokenizer, src)

            _convert(stage, target, "int8")
            info = _cache_info(target)
            if info is None:
                raise ValueError(f"{target}: the CTranslate2 conversion of {path} did not verify; "
                                 "remove the folder and try again, or use --int8-engine torch")
        return cls(target, info, int(meta.get("max_length", 128)), meta.get("encoder"), torch.get_num_threads())

    # the TransformerBackend interface -------------------------------------------------------

    def position_limit(self) -> int:
        return self._positions

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        from framing.model import TransformerBackend

        return TransformerBackend.token_ids(self, texts)

    def logits(self, texts: list[str], batch_size: int, max_batch_tokens: int | None = None) -> np.ndarray:
        """Logits in input order; batches of one token length (nothing padded), run concurrently."""
        from framing.model import length_batches

        out = np.zeros((len(texts), len(self.weight)), dtype=np.float32)
        ids = self.token_ids(texts)
        batches = length_batches([len(x) for x in ids], batch_size, max_batch_tokens or 1024, exact=True)
        arrays = [np.asarray([ids[i] for i in idx], dtype=np.int32) for idx in batches]
        if self.threads == 1 or len(arrays) == 1:
            results = map(self._batch, arrays)
        else:
            if self._pool is None:
                from concurrent.futures import ThreadPoolExecutor

                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="framing-ct2")
            results = self._pool.map(self._batch, arrays)
        for idx, logits in zip(batches, results):
            out[idx] = logits
        return out

    def hidden_states(self, arr: np.ndarray, model=None):
        """The encoder's last hidden states (a CTranslate2 StorageView) for ``arr`` (n x L token
        ids, one length, unpadded); ``model`` is another ``ctranslate2.Encoder`` over the same
        folder (the bench's, with other thread settings), default this backend's."""
        import ctranslate2

        n, length = arr.shape
        lengths = np.full(n, length, dtype=np.int32)
        # MPNet's absolute positions ride in as token types (see the module docstring).
        types = [list(range(length))] * n if self._positions_as_types else None
        return (model or self.model).forward_batch(ctranslate2.StorageView.from_array(arr),
                                                   lengths=ctranslate2.StorageView.from_array(lengths),
                                                   token_type_ids=types).last_hidden_state

    def _batch(self, arr: np.ndarray) -> np.ndarray:
        hidden = np.asarray(self.hidden_states(arr), dtype=np.float32)
        pooled = hidden[:, 0] if self.pooling == "cls" else hidden.mean(axis=1)
        # Per row, elementwise then a reduction along the row: the same numbers for a sentence
        # alone or in a batch of 64 (a BLAS product's kernel, and rounding, depend on the batch size).
        return (pooled[:, None, :] * self.weight[None]).sum(axis=-1) + self.bias

    def save(self, path: Path) -> dict:
        raise ValueError("a model loaded on CTranslate2 cannot be saved; load it without quantize=True to save it")
