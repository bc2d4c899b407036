"""The classifier users load and call: ``Classifier.load(path).predict(texts)``.

A model directory ("artifact") holds ``framing.json`` and the weights of one of three kinds:

* ``transformer`` — a fine-tuned encoder with a classification head. Either a LoRA adapter
  (``adapter_config.json`` + ``adapter_model.safetensors``) over the packaged encoder, or full
  weights (``config.json`` + ``model.safetensors`` + tokenizer).
* ``tfidf-lr`` — TF-IDF features + logistic regression (``tfidf.json`` + ``linear.safetensors``).
* ``embedding-lr`` — frozen mean-pooled encoder embeddings + logistic regression
  (``linear.safetensors``).

Every kind produces logits; probabilities are ``softmax(logits / temperature)``, where the
temperature is fitted on dev data (1.0 until calibrated). Weights are read only from
safetensors and JSON: never a pickle, never remote code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from framing.labels import ID2LABEL, LABEL2ID, LABELS, check_labels
from framing.metrics import softmax

CONFIG_NAME = "framing.json"
FORMAT_VERSION = 1
KINDS = ("pooled", "transformer", "tfidf-lr", "embedding-lr")


def default_model_path() -> Path:
    """The shipped default model (``accurate``), resolved inside the installed package."""
    from framing.paths import resolve_model

    return resolve_model(None)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise FileNotFoundError(f"{path}: cannot read ({e.strerror or e})") from e
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: corrupt JSON ({e.msg} at line {e.lineno}, column {e.colno})") from e


def _load_safetensors(path: Path) -> dict:
    from safetensors.numpy import load_file

    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing weights file")
    try:
        return load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for truncated/corrupt files
        raise ValueError(f"{path}: corrupt safetensors file ({e})") from e


def _contiguous(arrays: dict) -> dict:
    # safetensors writes the raw buffer: a Fortran-ordered array (scikit-learn's coef_ can be one)
    # would come back transposed-scrambled.
    return {k: np.ascontiguousarray(v) for k, v in arrays.items()}


def _check_safetensors(path: Path) -> None:
    """Open the header of a safetensors file so that corruption is reported with its path."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            f.keys()
    except Exception as e:  # safetensors raises its own error types for truncated/corrupt files
        raise ValueError(f"{path}: corrupt safetensors file ({e})") from e


def _resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was requested but torch sees no CUDA device; use device='cpu'")
    return device


# --------------------------------------------------------------------------------------------
# Backends: each turns texts into logits (n, 4) in LABELS order and saves itself to a folder.
# --------------------------------------------------------------------------------------------


def merge_lora(model, config: dict, tensors: dict, source: Path | str = "adapter") -> None:
    """Add a peft LoRA adapter's update ``B @ A * scale`` to ``model``'s weights in place.

    ``tensors`` is the adapter's state dict as saved by peft (``base_model.model.<module>.lora_A.weight``,
    ``...lora_B.weight``, and whole ``modules_to_save`` tensors such as the classifier head). Only
    plain LoRA is supported; DoRA, per-module ranks and fan-in/fan-out layouts are refused by name.
    """
    import torch

    unsupported = [k for k in ("use_dora", "fan_in_fan_out", "lora_bias") if config.get(k)]
    unsupported += [k for k in ("rank_pattern", "alpha_pattern") if config.get(k)]
    if config.get("peft_type", "LORA") != "LORA" or unsupported:
        raise ValueError(f"{source}: adapter_config.json uses {unsupported or config.get('peft_type')}; "
                         "framing loads plain LoRA adapters only")
    r, alpha = int(config["r"]), float(config["lora_alpha"])
    scale = alpha / (r ** 0.5) if config.get("use_rslora") else alpha / r
    params = dict(model.named_parameters())
    prefix = "base_model.model."
    done = set()
    with torch.no_grad():
        for key, value in tensors.items():
            name = key[len(prefix):] if key.startswith(prefix) else key
            if ".lora_A." in name:
                b_key = key.replace(".lora_A.", ".lora_B.")
                target = name.replace(".lora_A.weight", ".weight")
                if b_key not in tensors or target not in params:
                    raise ValueError(f"{source}: adapter tensor {key} has no matching "
                                     f"{'lora_B' if b_key not in tensors else 'model weight ' + target}")
                a, b = torch.from_numpy(tensors[key]), torch.from_numpy(tensors[b_key])
                params[target].add_((b.float() @ a.float()) * scale)
                done.update((key, b_key))
            elif ".lora_B." in name:
                continue
            else:  # modules_to_save (the classification head): stored whole
                name = name.replace(".modules_to_save.default.", ".")
                if name not in params or tuple(params[name].shape) != tuple(value.shape):
                    raise ValueError(f"{source}: adapter tensor {key} {tuple(value.shape)} does not fit the model "
                                     f"({tuple(params[name].shape) if name in params else 'no such parameter'})")
                params[name].copy_(torch.from_numpy(value))
                done.add(key)
    left = sorted(set(tensors) - done)
    if left:
        raise ValueError(f"{source}: unexpected adapter tensors {left[:5]}")


class TransformerBackend:
    """A sequence-classification transformer (optionally a LoRA adapter over the packaged encoder)."""

    kind = "transformer"

    def __init__(self, model, tokenizer, max_length: int = 128, encoder: str | None = None):
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.encoder = encoder  # set when the weights are an adapter over this encoder
        self.truncated = 0  # sentences longer than max_length seen so far (cut to fit)

    @classmethod
    def load(cls, path: Path, meta: dict, device: str, quantize: bool = False) -> "TransformerBackend":
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        if (path / "adapter_config.json").exists():
            from framing.encoder import resolve_encoder

            base_dir = resolve_encoder(meta.get("encoder"))
            from transformers.utils import logging as hf_logging

            # The encoder has no classification head yet (the adapter brings it), so transformers'
            # "classifier.weight MISSING ... consider training" report is expected: keep it (and the
            # weight-loading bar) quiet.
            verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
            hf_logging.set_verbosity_error()
            hf_logging.disable_progress_bar()
            try:
                model = AutoModelForSequenceClassification.from_pretrained(
                    base_dir, num_labels=len(LABELS), id2label=ID2LABEL, label2id=LABEL2ID, use_safetensors=True)
            finally:
                hf_logging.set_verbosity(verbosity)
                if bars:
                    hf_logging.enable_progress_bar()
            # Folding the low-rank update into the base weights makes inference as fast as a plain
            # model, and doing it here rather than through peft keeps peft (~140 MB) out of every
            # labelling process; training still uses peft.
            merge_lora(model, _read_json(path / "adapter_config.json"),
                       _load_safetensors(path / "adapter_model.safetensors"), source=path)
            tokenizer = AutoTokenizer.from_pretrained(base_dir)
            encoder = meta.get("encoder")
        else:
            if not (path / "model.safetensors").is_file():
                found = sorted(p.name for p in path.iterdir())
                raise FileNotFoundError(
                    f"{path}: no model.safetensors (found {found}). framing loads weights only from "
                    "safetensors; it never unpickles .bin/.pt files")
            _check_safetensors(path / "model.safetensors")
            model = AutoModelForSequenceClassification.from_pretrained(path, use_safetensors=True)
            tokenizer = AutoTokenizer.from_pretrained(path)
            encoder = None
        labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
        check_labels(labels, source=str(path / "config.json") if encoder is None else str(path))
        model.to(device).eval()
        if device == "cuda":
            model.half()  # fp16 inference on GPU
        elif quantize:
            from framing.quantize import own_memory, quantize_int8

            # int8 encoder Linear layers with per-row activation scales (CPU only); the head stays fp32.
            quantize_int8(model.base_model)
            own_memory(model)
        return cls(model, tokenizer, int(meta.get("max_length", 128)), encoder)

    def logits(self, texts: list[str], batch_size: int, max_batch_tokens: int | None = None,
               padded: bool = False) -> np.ndarray:
        """Logits in input order; batches of at most ``batch_size`` sentences and ``max_batch_tokens`` tokens.

        On CPU a batch holds sentences of one token length only (:func:`length_batches`), so there
        is no padding and a sentence's logits are bit-identical whatever it is batched with, in
        fp32 and int8 alike: labels never depend on input order, window or resume point.
        ``padded`` lets sentences of neighbouring lengths share a padded batch, as on CUDA: far
        fewer batches for a few scattered sentences (the fp32 recheck), logits equal to rounding.

        The token bound counts padding (sentences x longest in the batch) and defaults to 1,024 on
        CPU and 8,192 on CUDA. Bounding tokens rather than sentences keeps every activation tensor
        small: long sentences no longer make multi-megabyte temporaries whose varying sizes
        fragment the allocator's heap (with `--quantize` on 20,000 sentences, peak RSS fell from
        ~0.95 GB to ~0.65 GB), and short sentences travel in larger, faster batches.
        """
        import torch

        device = next(self.model.parameters()).device
        if max_batch_tokens is None:
            max_batch_tokens = 8192 if device.type == "cuda" else 1024
        out = np.zeros((len(texts), len(LABELS)), dtype=np.float32)
        ids = self.token_ids(texts)
        batches = length_batches([len(x) for x in ids], batch_size, max_batch_tokens,
                                 exact=device.type != "cuda" and not padded)
        if device.type == "cpu" and getattr(self, "_heap", None) is None:
            from framing.quantize import HeapGuard

            self._heap = HeapGuard()  # bounds the heap's growth from fragmentation (see there)
        self.model.eval()
        with torch.inference_mode():
            for idx in batches:
                enc = self.tokenizer.pad({"input_ids": [ids[i] for i in idx]}, padding=True, return_tensors="pt")
                out[idx] = self.model(**enc.to(device)).logits.float().cpu().numpy()
                if device.type == "cpu":
                    self._heap.check()
        return out

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        """Token ids per sentence, cutting sentences over ``max_length`` tokens (counted in ``truncated``)."""
        enc = self.tokenizer(texts, truncation=False, return_attention_mask=False, return_token_type_ids=False,
                             verbose=False)
        ids = enc["input_ids"]
        sep = self.tokenizer.sep_token_id
        # The model cannot take more positions than it has embeddings for, whatever max_length says.
        limit = min(self.max_length, self.position_limit())
        for k, seq in enumerate(ids):
            if len(seq) > limit:
                self.truncated += 1
                ids[k] = seq[: limit - 1] + ([sep] if sep is not None else seq[-1:])
        return ids

    def position_limit(self) -> int:
        """The most tokens the model has position embeddings for."""
        return getattr(self.model.config, "max_position_embeddings", self.max_length)

    def encode(self, texts: list[str]):
        """Tokenise and pad a batch, cutting sentences over ``max_length`` tokens (counted in ``truncated``)."""
        return self.tokenizer.pad({"input_ids": self.token_ids(texts)}, padding=True, return_tensors="pt")

    def save(self, path: Path) -> dict:
        from safetensors.torch import save_file

        try:
            from peft import PeftModel, get_peft_model_state_dict
        except ImportError:  # pragma: no cover - peft is a dependency
            PeftModel = ()
        if isinstance(self.model, PeftModel):
            state = {k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(self.model).items()}
            save_file(state, str(path / "adapter_model.safetensors"))
            cfg = self.model.peft_config["default"].to_dict()
            cfg = {k: (sorted(v) if isinstance(v, set) else v) for k, v in cfg.items()}
            (path / "adapter_config.json").write_text(json.dumps(cfg, indent=1, default=str) + "\n")
            return {"encoder": self.encoder, "max_length": self.max_length, "adapter": True}
        self.model.config.id2label = dict(ID2LABEL)
        self.model.config.label2id = dict(LABEL2ID)
        self.model.save_pretrained(path, safe_serialization=True)
        self.tokenizer.save_pretrained(path)
        return {"max_length": self.max_length, "adapter": False}


def model_fingerprint(ref: str | Path | None = None, *, device: str = "auto", quantize: bool = False,
                      engine: str = "auto", recheck: float | None = None) -> dict:
    """:meth:`Classifier.fingerprint` of the model ``Classifier.load(ref, ...)`` would load, without loading it
    (reads ``framing.json`` and hashes the model's files), so a job can be checked first."""
    from framing.ct2 import resolve_engine
    from framing.paths import model_content_hash, resolve_model

    path = resolve_model(ref)
    meta = _read_json(path / CONFIG_NAME) if (path / CONFIG_NAME).exists() else {"kind": "transformer"}
    meta.setdefault("kind", "transformer")
    device = _resolve_device(device)
    used = resolve_engine(engine, meta, device=device, quantize=quantize, source=str(path))
    margin = recheck_margin(recheck, used, meta)
    return {"name": meta.get("name", path.name), "precision": precision(device, quantize, meta["kind"], used, margin),
            "sha256": model_content_hash(path)}


def precision(device: str, quantize: bool, kind: str = "transformer", engine: str = "torch",
              recheck: float = 0.0) -> str:
    """The arithmetic a model of ``kind`` runs in on ``device`` (part of a labelling job's identity):
    ``fp32``, ``fp16`` (CUDA), ``int8`` (torch, :mod:`framing.quantize`) or ``int8-ctranslate2``,
    followed by ``+fp32<M`` when near-ties (top-two logit margin under ``M``) are relabelled in fp32."""
    if kind == "tfidf-lr":
        return "fp32"
    if device == "cuda":
        return "fp16"
    if quantize and kind in ("pooled", "transformer"):
        name = "int8-ctranslate2" if engine == "ctranslate2" else "int8"
        return f"{name}+fp32<{recheck:g}" if recheck > 0 else name
    return "fp32"


def recheck_margin(recheck: float | None, engine: str, meta: dict | None = None) -> float:
    """The near-tie margin in effect for an int8 engine (``engine`` as
    :func:`framing.ct2.resolve_engine` returns it; else 0): ``recheck``, or when None the model's
    own ``int8_recheck`` from ``framing.json`` (its training config's key; 0 when absent).

    With a margin, sentences whose int8 top-two logit margin is under it are relabelled in fp32.
    int8 moves the shipped models' logits by a median of 0.03-0.05 and at most 0.5-1.0, so its
    label flips gather among near-ties. An invalid value is an error naming the parameter."""
    def is_margin(x) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool) and x >= 0

    if recheck is not None and not is_margin(recheck):
        raise ValueError(f"recheck (--int8-recheck) must be a logit margin >= 0 (0: no fp32 recheck), "
                         f"got {recheck!r}")
    if engine == "none":
        if recheck:
            raise ValueError(f"recheck={recheck!r} (--int8-recheck) applies to int8 inference: add quantize=True "
                             "(--quantize) on CPU")
        return 0.0
    if recheck is None:
        recheck = (meta or {}).get("int8_recheck", 0.0)
        if not is_margin(recheck):
            raise ValueError(f"framing.json: int8_recheck must be a logit margin >= 0, got {recheck!r}")
    return float(recheck)


class RecheckBackend:
    """int8 logits, except for near-ties, which are recomputed in fp32.

    A sentence is rechecked when its int8 top-two logit margin is under ``margin``. Its int8 logits
    are bit-identical whatever its batch-mates, so the decision depends only on the sentence; the
    rechecked rows carry fp32 logits, equal across batchings to rounding, as fp32 labelling always
    was. The fp32 model stays loaded beside the int8 one. The rechecked rows of a call (a few
    percent, of scattered lengths) share padded fp32 batches: one batch per token length would make
    most of them batches of one.
    """

    def __init__(self, fast, exact, margin: float):
        self.fast, self.exact, self.margin = fast, exact, float(margin)
        self.kind = fast.kind
        self.rechecked = 0
        """Sentences relabelled in fp32 so far."""

    @property
    def truncated(self) -> int:
        return self.fast.truncated

    def position_limit(self) -> int:
        return self.fast.position_limit()

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        return self.fast.token_ids(texts)

    def logits(self, texts: list[str], batch_size: int, max_batch_tokens: int | None = None) -> np.ndarray:
        out = self.fast.logits(texts, batch_size, max_batch_tokens)
        top2 = np.sort(out, axis=1)[:, -2:]
        near = np.flatnonzero(top2[:, 1] - top2[:, 0] < self.margin)
        if near.size:
            out[near] = self.exact.logits([texts[i] for i in near], batch_size, max_batch_tokens, padded=True)
            self.rechecked += int(near.size)
        return out

    def save(self, path: Path) -> dict:
        raise ValueError("an int8 model cannot be saved; load it without quantize=True to save it")


def length_batches(lengths: Sequence[int], batch_size: int, max_batch_tokens: int,
                   exact: bool = True) -> list[list[int]]:
    """Group sentence indices into batches of at most ``batch_size`` sentences and ``max_batch_tokens`` tokens.

    With ``exact`` every batch holds one token length: nothing is padded, and since each sentence's
    rows go through the same kernels whatever the batch size, its output does not depend on its
    batch-mates (int8 activation scales are per row, :mod:`framing.quantize`). Without it (CUDA,
    where large batches matter more than bit-exactness), sentences are sorted by length and
    consecutive ones share a batch, padded to the longest.
    """
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches: list[list[int]] = []
    cur: list[int] = []
    for i in order:  # ascending length: the newest sentence is the longest of the batch
        if cur and (len(cur) >= batch_size or (len(cur) + 1) * lengths[i] > max_batch_tokens
                    or (exact and lengths[i] != lengths[cur[0]])):
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur:
        batches.append(cur)
    return batches


class TfidfBackend:
    """TF-IDF (word 1-2-grams) + multinomial logistic regression, stored as JSON + safetensors."""

    kind = "tfidf-lr"

    def __init__(self, vectorizer, coef: np.ndarray, intercept: np.ndarray):
        self.vectorizer = vectorizer
        self.coef = coef
        self.intercept = intercept

    @classmethod
    def load(cls, path: Path, meta: dict, device: str, quantize: bool = False) -> "TfidfBackend":
        from sklearn.feature_extraction.text import TfidfVectorizer

        spec = _read_json(path / "tfidf.json")
        params = spec["params"]
        params["ngram_range"] = tuple(params["ngram_range"])
        vec = TfidfVectorizer(vocabulary=spec["vocabulary"], **params)
        w = _load_safetensors(path / "linear.safetensors")
        vec.idf_ = w["idf"]
        return cls(vec, w["coef"], w["intercept"])

    def logits(self, texts: list[str], batch_size: int, max_batch_tokens: int | None = None) -> np.ndarray:
        X = self.vectorizer.transform(texts)
        return np.asarray(X @ self.coef.T + self.intercept, dtype=np.float32)

    def save(self, path: Path) -> dict:
        from safetensors.numpy import save_file

        keys = ("lowercase", "analyzer", "ngram_range", "min_df", "max_df", "sublinear_tf", "norm", "use_idf", "smooth_idf")
        params = {k: getattr(self.vectorizer, k) for k in keys}
        vocab = {t: int(i) for t, i in self.vectorizer.vocabulary_.items()}
        (path / "tfidf.json").write_text(json.dumps({"params": params, "vocabulary": vocab}) + "\n")
        save_file(_contiguous({"idf": self.vectorizer.idf_.astype(np.float64), "coef": self.coef.astype(np.float32),
                               "intercept": self.intercept.astype(np.float32)}), str(path / "linear.safetensors"))
        return {}


class EmbeddingBackend:
    """Frozen mean-pooled, L2-normalised encoder embeddings + logistic regression."""

    kind = "embedding-lr"

    def __init__(self, encoder_ref: str | None, coef: np.ndarray, intercept: np.ndarray, device: str = "cpu",
                 max_length: int = 128):
        self.encoder_ref = encoder_ref
        self.coef = coef
        self.intercept = intercept
        self.device = device
        self.max_length = max_length
        self._encoder = None

    @classmethod
    def load(cls, path: Path, meta: dict, device: str, quantize: bool = False) -> "EmbeddingBackend":
        w = _load_safetensors(path / "linear.safetensors")
        return cls(meta.get("encoder"), w["coef"], w["intercept"], device, int(meta.get("max_length", 128)))

    def embed(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Sentence embeddings as all-MiniLM-L6-v2 defines them: mean pooling, then L2 norm."""
        import torch
        from transformers import AutoModel, AutoTokenizer

        from framing.encoder import resolve_encoder

        if self._encoder is None:
            folder = resolve_encoder(self.encoder_ref)
            self._encoder = (AutoModel.from_pretrained(folder, use_safetensors=True).to(self.device).eval(),
                             AutoTokenizer.from_pretrained(folder))
        model, tok = self._encoder
        out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
        ids = tok(texts, truncation=True, max_length=self.max_length, return_attention_mask=False,
                  return_token_type_ids=False)["input_ids"]
        with torch.inference_mode():
            for idx in length_batches([len(x) for x in ids], batch_size, 8192 if self.device == "cuda" else 1024,
                                      exact=self.device != "cuda"):
                enc = tok.pad({"input_ids": [ids[i] for i in idx]}, padding=True, return_tensors="pt").to(self.device)
                hidden = model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                emb = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out[idx] = torch.nn.functional.normalize(emb, dim=-1).cpu().numpy()
        return out

    def logits(self, texts: list[str], batch_size: int, max_batch_tokens: int | None = None) -> np.ndarray:
        return (self.embed(texts, batch_size) @ self.coef.T + self.intercept).astype(np.float32)

    def save(self, path: Path) -> dict:
        from safetensors.numpy import save_file

        save_file(_contiguous({"coef": self.coef.astype(np.float32), "intercept": self.intercept.astype(np.float32)}),
                  str(path / "linear.safetensors"))
        return {"encoder": self.encoder_ref, "max_length": self.max_length}


BACKENDS = {b.kind: b for b in (TransformerBackend, TfidfBackend, EmbeddingBackend)}


def _backend_class(kind: str):
    if kind == "pooled":  # framing.pooled imports this module
        from framing.pooled import PooledBackend

        return PooledBackend
    return BACKENDS.get(kind)


class Classifier:
    """Label sentences as allegation / denial / justification / other.

    Example::

        >>> from framing import Classifier
        >>> clf = Classifier.load()  # the shipped default model
        >>> clf.predict("The ministry called the report a fabrication.")
        'denial'
        >>> clf.predict_proba(["...", "..."]).shape
        (2, 4)

    Args:
        backend: What turns texts into logits (see :data:`BACKENDS`).
        temperature: Divides the logits before the softmax; fitted on dev data to calibrate.
        name: A name for the model, written into every labelled record.
        batch_size: At most this many sentences per forward pass.
        max_batch_tokens: At most this many tokens, padding included, per forward pass of a
            transformer (default: 1,024 on CPU, 8,192 on CUDA); bounds memory on long sentences.
    """

    labels = LABELS

    def __init__(self, backend, temperature: float = 1.0, name: str = "framing-model", batch_size: int = 64,
                 max_batch_tokens: int | None = None):
        self.backend = backend
        self.temperature = temperature
        self.name = name
        if not (isinstance(batch_size, int) and batch_size >= 1):
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if max_batch_tokens is not None and not (isinstance(max_batch_tokens, int) and max_batch_tokens >= 1):
            raise ValueError(f"max_batch_tokens must be a positive integer or None, got {max_batch_tokens!r}")
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.path: Path | None = None
        """The model directory it was loaded from (None when built in memory)."""
        self.precision = "fp32"
        """``fp32``, ``int8`` / ``int8-ctranslate2`` (``quantize=True``) or ``fp16`` (CUDA)."""

    def fingerprint(self) -> dict:
        """What identifies this model's labels: name, precision and the content hash of its files."""
        from framing.paths import model_content_hash

        return {"name": self.name, "precision": self.precision,
                "sha256": model_content_hash(self.path) if self.path is not None else None}

    @classmethod
    def load(cls, path: str | Path | None = None, *, device: str = "auto", batch_size: int = 64,
             max_batch_tokens: int | None = None, quantize: bool = False, engine: str = "auto",
             recheck: float | None = None) -> "Classifier":
        """Load a shipped model by name (``"accurate"``, ``"fast"``) or a model directory; ``None`` loads ``accurate``.

        A plain Hugging Face directory (``config.json`` + ``model.safetensors`` + tokenizer, such
        as ``framing export`` writes) loads too.

        Args:
            path: The model directory.
            device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``. On CUDA the model runs in fp16.
            batch_size: At most this many sentences per forward pass.
            max_batch_tokens: At most this many tokens (padding included) per forward pass;
                default 1,024 on CPU, 8,192 on CUDA.
            quantize: On CPU, int8 weights and per-row int8 activations in the encoder's Linear
                layers (:mod:`framing.quantize`; faster, and as deterministic as fp32; see the
                model card for its effect on accuracy).
            engine: With ``quantize`` on CPU, the int8 engine: ``torch`` (:mod:`framing.quantize`),
                ``ctranslate2`` (:mod:`framing.ct2`; pooled models on BERT and MPNet encoders, both
                shipped models among them; about twice as fast) or ``auto`` (CTranslate2 where it is installed and the
                model converts, else torch). Both give labels that do not depend on batch-mates.
            recheck: With ``quantize``, relabel in fp32 each sentence whose int8 top-two logit
                margin is under this (default: the model's ``int8_recheck`` in ``framing.json``,
                else 0: int8 only). The fp32 weights are then loaded too.

        Raises:
            FileNotFoundError: the directory or a weights file is missing.
            ValueError: a file is corrupt, or the model's labels differ from :data:`LABELS`.
        """
        from framing.paths import resolve_model

        path = resolve_model(path)
        device = _resolve_device(device)
        if (path / CONFIG_NAME).exists():
            meta = _read_json(path / CONFIG_NAME)
        elif (path / "config.json").exists():
            meta = {"kind": "transformer", "labels": list(LABELS), "name": path.name}
        else:
            raise FileNotFoundError(
                f"{path} is not a framing model: expected {CONFIG_NAME} (or a Hugging Face config.json "
                f"with model.safetensors); found {sorted(p.name for p in path.iterdir())}")
        kind = meta.get("kind")
        if _backend_class(kind) is None:
            raise ValueError(f"{path / CONFIG_NAME}: unknown model kind {kind!r}; expected one of {list(KINDS)}")
        check_labels(meta.get("labels", []), source=str(path / CONFIG_NAME))
        from framing.ct2 import resolve_engine

        used = resolve_engine(engine, meta, device=device, quantize=quantize, source=str(path))
        margin = recheck_margin(recheck, used, meta)
        if used == "ctranslate2":
            from framing.ct2 import CT2Backend

            backend = CT2Backend.load(path, meta, device, quantize=True)
        else:
            backend = _backend_class(kind).load(path, meta, device, quantize=quantize)
        if margin > 0:
            backend = RecheckBackend(backend, _backend_class(kind).load(path, meta, device, quantize=False), margin)
        temperature = float(meta.get("temperature", 1.0))
        if not temperature > 0:
            raise ValueError(f"{path / CONFIG_NAME}: temperature must be > 0, got {temperature!r}")
        clf = cls(backend, temperature=temperature, name=meta.get("name", path.name), batch_size=batch_size,
                  max_batch_tokens=max_batch_tokens)
        clf.path = path
        clf.precision = precision(device, quantize, kind, used, margin)
        return clf

    def save(self, path: str | Path, **extra) -> Path:
        """Write the model to ``path`` (created if needed): ``framing.json`` and the weights."""
        from framing import __version__

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        meta = {"format": "framing-model", "format_version": FORMAT_VERSION, "kind": self.backend.kind,
                "name": self.name, "labels": list(LABELS), "temperature": self.temperature,
                "framing_version": __version__}
        meta.update(self.backend.save(path))
        meta.update(extra)
        (path / CONFIG_NAME).write_text(json.dumps(meta, indent=1) + "\n")
        return path

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        """Raw logits, shape (n, 4), in :data:`LABELS` order (before temperature)."""
        texts = self._as_list(texts)
        if not texts:
            return np.zeros((0, len(LABELS)), dtype=np.float32)
        return self.backend.logits(texts, self.batch_size, self.max_batch_tokens)

    def predict_proba(self, texts: str | Sequence[str]) -> np.ndarray:
        """Probabilities, shape (n, 4), columns in :data:`LABELS` order; a single string gives shape (4,)."""
        probs = softmax(self.logits(texts), self.temperature)
        return probs[0] if isinstance(texts, str) else probs

    def predict(self, texts: str | Sequence[str]) -> list[str] | str:
        """Labels for ``texts``; a single string gives a single label."""
        probs = self.predict_proba(texts)
        if isinstance(texts, str):
            return LABELS[int(np.argmax(probs))]
        return [LABELS[i] for i in probs.argmax(axis=1)]

    @staticmethod
    def _as_list(texts) -> list[str]:
        if isinstance(texts, str):
            return [texts]
        texts = list(texts)
        bad = [(i, type(t).__name__) for i, t in enumerate(texts) if not isinstance(t, str)]
        if bad:
            i, typ = bad[0]
            raise TypeError(f"texts must be strings; item {i} is {typ}")
        return texts

    def __repr__(self) -> str:
        return f"Classifier(name={self.name!r}, kind={self.backend.kind!r}, temperature={self.temperature:.3f})"
