"""The CTranslate2 int8 engine (framing.ct2) on a tiny random pooled BERT model built from a config."""

import json
import random

import numpy as np
import pytest
import torch

import framing.ct2 as ct2
from framing import Classifier
from framing.encoder import ENCODERS, EncoderSpec, register, sha256_file
from framing.model import RecheckBackend, model_fingerprint
from framing.training import TrainConfig, train

from conftest import TRAIN

pytest.importorskip("ctranslate2")

TEXTS = [t for t, _ in TRAIN] + [
    "The spokesperson said the army fired only blanks at the crowd.",
    "Residents said soldiers shot at them.",
    "The company rejected the findings.",
    "Reporters asked about the report.",
]


def _mpnet_tokenizer(tokenizer):
    """The tiny tokenizer with [PAD] at id 1: MPNet counts positions over the tokens that are not id 1
    (its padding_idx is fixed), as all-mpnet-base-v2's own tokenizer has it."""
    from transformers import BertTokenizerFast

    vocab = sorted(tokenizer.get_vocab(), key=tokenizer.get_vocab().get)
    vocab[0], vocab[1] = vocab[1], vocab[0]
    assert vocab[1] == "[PAD]"
    return BertTokenizerFast(vocab={t: i for i, t in enumerate(vocab)}, do_lower_case=True)


def _tiny_encoder(arch: str, tokenizer):
    """A tiny random BERT or MPNet encoder (MPNet: relative attention bias plus absolute positions)."""
    from transformers import BertConfig, BertModel, MPNetConfig, MPNetModel

    torch.manual_seed(0)
    size = dict(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                intermediate_size=64, max_position_embeddings=64, hidden_dropout_prob=0.0,
                attention_probs_dropout_prob=0.0)
    if arch == "mpnet":
        return MPNetModel(MPNetConfig(**size, pad_token_id=tokenizer.pad_token_id), add_pooling_layer=False)
    return BertModel(BertConfig(**size), add_pooling_layer=False)


TARGETS = {"bert": ("query", "key", "value", "dense"),
           "mpnet": ("q", "k", "v", "o", "intermediate.dense", "output.dense")}


def _register(tmp_path, tokenizer, name, converts, arch="bert"):
    folder = tmp_path / name
    _tiny_encoder(arch, tokenizer).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return register(EncoderSpec(name=name, packages=(("none", "0"),), weights_sha256=sha256_file(folder / "model.safetensors"),
                                locate=lambda s: folder, lora_targets=TARGETS[arch], ctranslate2=converts))


@pytest.fixture(scope="module", params=["bert", "mpnet"])
def pooled_dir(request, tmp_path_factory, _tiny_model_session):
    """A tiny pooled model on each architecture CTranslate2 runs (LoRA on both layers, trained a few
    steps so the adapter is non-zero)."""
    from datasets import Dataset, DatasetDict

    tmp = tmp_path_factory.mktemp(f"ct2-{request.param}")
    _, tokenizer = _tiny_model_session
    if request.param == "mpnet":
        tokenizer = _mpnet_tokenizer(tokenizer)
    spec = _register(tmp, tokenizer, f"tiny-ct2-{request.param}", converts=True, arch=request.param)
    rows = [{"text": t, "label": l} for t, l in TRAIN]
    corpus = DatasetDict({"train": Dataset.from_list(rows * 2), "dev": Dataset.from_list(rows),
                          "test": Dataset.from_list(rows)})
    cfg = TrainConfig(model="pooled", encoder=spec.name, trainable_layers=2, epochs=3, learning_rate=5e-3,
                      batch_size=4, lora_r=4, lora_alpha=8, lora_dropout=0.0, dropout=0.0, warmup_ratio=0.0,
                      patience=0, real_dev="", lora_targets=list(spec.lora_targets))
    train(cfg, tmp / "m", argv=["framing", "train"], log=lambda *_: None, corpus=corpus)
    yield tmp / "m"
    ENCODERS.pop(spec.name, None)


@pytest.fixture(autouse=True)
def _cache(monkeypatch, tmp_path):
    monkeypatch.setenv("FRAMING_CACHE", str(tmp_path / "cache"))


def test_auto_takes_ctranslate2_where_the_encoder_converts(pooled_dir):
    meta = json.loads((pooled_dir / "framing.json").read_text())
    assert ct2.resolve_engine("auto", meta, device="cpu", quantize=True) == "ctranslate2"
    assert ct2.resolve_engine("torch", meta, device="cpu", quantize=True) == "torch"
    assert ct2.resolve_engine("auto", meta, device="cpu", quantize=False) == "none"
    assert ct2.resolve_engine("auto", meta, device="cuda", quantize=True) == "none"
    clf = Classifier.load(pooled_dir, device="cpu", quantize=True, recheck=0)
    assert clf.precision == "int8-ctranslate2" and isinstance(clf.backend, ct2.CT2Backend)
    assert Classifier.load(pooled_dir, device="cpu", quantize=True, engine="torch", recheck=0).precision == "int8"
    assert model_fingerprint(pooled_dir, device="cpu", quantize=True, recheck=0)["precision"] == "int8-ctranslate2"
    assert model_fingerprint(pooled_dir, device="cpu", quantize=True, engine="torch",
                             recheck=0)["precision"] == "int8"
    assert Classifier.load(pooled_dir, device="cpu", quantize=True).precision == "int8-ctranslate2"
    assert model_fingerprint(pooled_dir, device="cpu", quantize=True, engine="torch",
                             recheck=0.25)["precision"] == "int8+fp32<0.25"


def test_a_model_can_ask_for_the_fp32_recheck(pooled_dir, tmp_path):
    """``int8_recheck`` in framing.json is the model's default margin; ``recheck=`` overrides it."""
    import shutil

    m = tmp_path / "m"
    shutil.copytree(pooled_dir, m)
    meta = json.loads((m / "framing.json").read_text())
    (m / "framing.json").write_text(json.dumps(dict(meta, int8_recheck=0.5)))
    clf = Classifier.load(m, device="cpu", quantize=True)
    assert clf.precision == "int8-ctranslate2+fp32<0.5" and isinstance(clf.backend, RecheckBackend)
    assert isinstance(clf.backend.fast, ct2.CT2Backend) and clf.backend.margin == 0.5
    assert model_fingerprint(m, device="cpu", quantize=True)["precision"] == clf.precision
    assert Classifier.load(m, device="cpu", quantize=True, recheck=0).precision == "int8-ctranslate2"
    assert Classifier.load(m, device="cpu").precision == "fp32"  # no int8: nothing to recheck
    (m / "framing.json").write_text(json.dumps(dict(meta, int8_recheck="high")))
    with pytest.raises(ValueError, match="framing.json: int8_recheck must be a logit margin >= 0, got 'high'"):
        Classifier.load(m, device="cpu", quantize=True)


def test_engine_errors_say_why(pooled_dir, tmp_path, monkeypatch, _tiny_model_session):
    meta = json.loads((pooled_dir / "framing.json").read_text())
    with pytest.raises(ValueError, match="engine must be one of"):
        ct2.resolve_engine("onnx", meta, device="cpu", quantize=True)
    with pytest.raises(ValueError, match="int8 on CPU only: add quantize=True"):
        Classifier.load(pooled_dir, device="cpu", engine="ctranslate2")
    for other in (dict(meta, encoder="no-such-encoder"), dict(meta, kind="transformer")):
        assert ct2.resolve_engine("auto", other, device="cpu", quantize=True) == "torch"
        with pytest.raises(ValueError, match="BERT and MPNet encoders; this one is kind"):
            ct2.resolve_engine("ctranslate2", other, device="cpu", quantize=True)
    monkeypatch.setattr(ct2, "installed", lambda: False)
    assert ct2.resolve_engine("auto", meta, device="cpu", quantize=True) == "torch"
    with pytest.raises(ImportError, match="pip install 'ctranslate2"):
        ct2.resolve_engine("ctranslate2", meta, device="cpu", quantize=True)


def test_close_to_fp32(pooled_dir):
    fp32 = Classifier.load(pooled_dir, device="cpu").predict_proba(TEXTS)
    q = Classifier.load(pooled_dir, device="cpu", quantize=True, engine="ctranslate2", recheck=0).predict_proba(TEXTS)
    assert np.abs(q - fp32).max() < 0.05
    # the int8 path really ran: not the fp32 numbers
    assert not np.array_equal(q, fp32)


def _median_margin(logits):
    top2 = np.sort(logits, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0], float(np.median(top2[:, 1] - top2[:, 0]))


@pytest.mark.parametrize("recheck", [0, "median"])
def test_logits_do_not_depend_on_batch_mates_order_or_batch_size(pooled_dir, recheck):
    texts = TEXTS * 3
    if recheck == "median":  # some sentences rechecked in fp32, some not
        recheck = _median_margin(Classifier.load(pooled_dir, device="cpu", quantize=True, recheck=0).logits(TEXTS))[1]
    ref = Classifier.load(pooled_dir, device="cpu", quantize=True, batch_size=64, recheck=recheck).logits(texts)
    alone = np.stack([Classifier.load(pooled_dir, device="cpu", quantize=True, batch_size=1,
                                      recheck=recheck).logits([t])[0] for t in TEXTS])
    # int8 rows are bit-identical; fp32 rows (the rechecked ones) to rounding, as fp32 labelling
    # always was: torch's fp32 kernels may round differently for another number of rows
    same = np.array_equal if recheck == 0 else lambda a, b: np.allclose(a, b, rtol=0, atol=1e-5)
    assert same(alone, ref[: len(TEXTS)])
    order = list(range(len(texts)))
    random.Random(0).shuffle(order)
    for bs in (2, 5):
        got = Classifier.load(pooled_dir, device="cpu", quantize=True, batch_size=bs,
                              recheck=recheck).logits([texts[i] for i in order])
        assert same(got, ref[order])


def test_conversion_is_cached_and_a_damaged_one_is_rebuilt(pooled_dir, tmp_path, monkeypatch):
    ref = Classifier.load(pooled_dir, device="cpu", quantize=True, recheck=0).logits(TEXTS)
    (entry,) = (tmp_path / "cache" / "ctranslate2").iterdir()
    stamp = (entry / "model.bin").stat().st_mtime_ns
    import framing.pooled

    def no_torch_load(*a, **k):
        raise AssertionError("a sound cache entry is used without loading the torch model")

    with monkeypatch.context() as m:
        m.setattr(framing.pooled.PooledBackend, "load", no_torch_load)
        assert np.array_equal(Classifier.load(pooled_dir, device="cpu", quantize=True, recheck=0).logits(TEXTS), ref)
    assert (entry / "model.bin").stat().st_mtime_ns == stamp  # reused, not converted again
    with open(entry / "model.bin", "r+b") as f:  # flip bytes in the middle of the weights
        f.seek((entry / "model.bin").stat().st_size // 2)
        f.write(b"\x00\x01\x02\x03" * 8)
    again = Classifier.load(pooled_dir, device="cpu", quantize=True, recheck=0).logits(TEXTS)
    assert np.array_equal(again, ref)
    assert [p.name for p in (tmp_path / "cache" / "ctranslate2").iterdir()] == [entry.name]


@pytest.mark.parametrize("engine", ["ctranslate2", "torch"])
def test_near_ties_and_only_they_are_relabelled_in_fp32(pooled_dir, engine):
    fp32 = Classifier.load(pooled_dir, device="cpu").logits(TEXTS)
    int8 = Classifier.load(pooled_dir, device="cpu", quantize=True, engine=engine, recheck=0).logits(TEXTS)
    margins, median = _median_margin(int8)
    clf = Classifier.load(pooled_dir, device="cpu", quantize=True, engine=engine, recheck=median)
    got = clf.logits(TEXTS)
    near = margins < median
    assert 0 < near.sum() < len(TEXTS) and clf.backend.rechecked == near.sum()
    assert np.array_equal(got[~near], int8[~near])
    np.testing.assert_allclose(got[near], fp32[near], rtol=0, atol=1e-5)
    assert not np.allclose(int8[near], fp32[near], rtol=0, atol=1e-5)  # so the rows really changed
    # a margin above every gap rechecks everything: the fp32 numbers, in padded batches (one batch
    # per token length would make most rechecks batches of one)
    every = Classifier.load(pooled_dir, device="cpu", quantize=True, engine=engine, recheck=float(margins.max()) + 1)
    calls = []
    every.backend.exact.model.register_forward_hook(lambda *_: calls.append(1))
    np.testing.assert_allclose(every.logits(TEXTS), fp32, rtol=0, atol=1e-5)
    lengths = {len(ids) for ids in every.backend.exact.token_ids(TEXTS)}
    assert len(lengths) > 2 and len(calls) < len(lengths), (len(calls), len(lengths))


def test_bad_recheck_values_are_refused(pooled_dir, tmp_path, capsys):
    from framing.cli import main

    for bad in (-0.1, float("nan"), "0.5", True):
        with pytest.raises(ValueError, match=r"recheck \(--int8-recheck\) must be a logit margin >= 0"):
            Classifier.load(pooled_dir, device="cpu", quantize=True, recheck=bad)
    with pytest.raises(ValueError, match="applies to int8 inference: add quantize=True"):
        Classifier.load(pooled_dir, device="cpu", recheck=0.5)
    inp = tmp_path / "in.txt"
    inp.write_text("Residents said soldiers shot at them.\n")
    assert main(["label", str(inp), "--model", str(pooled_dir), "--quantize", "--int8-recheck", "-1",
                 "-o", str(tmp_path / "o.jsonl")]) != 0
    assert "--int8-recheck" in capsys.readouterr().err and not (tmp_path / "o.jsonl").exists()


def test_label_command_takes_the_engine_flag(pooled_dir, tmp_path, capsys):
    from framing.cli import main

    inp = tmp_path / "in.txt"
    inp.write_text(" ".join(TEXTS[:4]) + "\n")
    outs = {}
    for engine in ("ctranslate2", "torch"):
        out = tmp_path / f"{engine}.jsonl"
        assert main(["label", str(inp), "--model", str(pooled_dir), "--quantize", "--int8-engine", engine,
                     "-o", str(out), "--quiet"]) == 0
        outs[engine] = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["text"] for r in outs["ctranslate2"]] == [r["text"] for r in outs["torch"]]
    assert len(outs["torch"]) == 4


@pytest.mark.parametrize("arch", ["bert", "mpnet"])
def test_fp32_conversion_matches_transformers(arch, tmp_path, _tiny_model_session):
    """The converted encoder in fp32 gives transformers' hidden states, positions past the exact
    relative buckets (16) and the bias's max distance included."""
    import ctranslate2

    from framing.pooled import PooledClassifier

    _, tokenizer = _tiny_model_session
    if arch == "mpnet":
        tokenizer = _mpnet_tokenizer(tokenizer)
    encoder = _tiny_encoder(arch, tokenizer).eval()
    ct2.convert(PooledClassifier(encoder), tokenizer, tmp_path / "ct2", quantization=None)
    info = json.loads((tmp_path / "ct2" / "framing-ct2.json").read_text())
    assert info["positions_as_token_types"] == (arch == "mpnet")
    backend = ct2.CT2Backend(tmp_path / "ct2", info, 64, None, threads=1)
    model = ctranslate2.Encoder(str(tmp_path / "ct2"), device="cpu", compute_type="float32")
    vocab = [i for i in sorted(tokenizer.get_vocab().values()) if i != tokenizer.pad_token_id and i < encoder.config.vocab_size]
    rng = random.Random(0)
    for length in (3, 20, 40, info["max_position_embeddings"]):
        ids = np.asarray([rng.choices(vocab, k=length) for _ in range(2)], dtype=np.int32)
        with torch.no_grad():
            ref = encoder(torch.tensor(ids, dtype=torch.long)).last_hidden_state.numpy()
        np.testing.assert_allclose(np.asarray(backend.hidden_states(ids, model)), ref, atol=2e-5)

