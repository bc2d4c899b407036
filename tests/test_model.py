import json
import re
import subprocess
import sys

import numpy as np
import pytest

from framing import LABELS, Classifier
from framing.export import export
from framing.model import TransformerBackend
from framing.training import TrainConfig, fit_transformer


def _trained(tiny_model, train_data, epochs=60):
    model, tok = tiny_model
    texts = [t for t, _ in train_data]
    labels = [LABELS.index(l) for _, l in train_data]
    cfg = TrainConfig(epochs=epochs, batch_size=8, learning_rate=1e-2, warmup_ratio=0.0, patience=0, lora=False,
                      balance="loss", device="cpu")
    backend = fit_transformer(cfg, texts, labels, texts, labels, "cpu", model, tok, log=lambda *_: None)
    return Classifier(backend, name="tiny", batch_size=3)


@pytest.fixture
def trained(tiny_model, train_data):
    return _trained(tiny_model, train_data)


def test_tiny_model_overfits_eight_sentences(trained, train_data):
    texts = [t for t, _ in train_data]
    assert trained.predict(texts) == [l for _, l in train_data]
    probs = trained.predict_proba(texts)
    gold = [LABELS.index(l) for _, l in train_data]
    assert probs[np.arange(8), gold].min() > 0.8
    assert trained.backend.history[-1]["train_loss"] < trained.backend.history[0]["train_loss"] / 5


def test_probabilities_shape_sum_and_argmax(trained, train_data):
    texts = [t for t, _ in train_data]
    probs = trained.predict_proba(texts)
    assert probs.shape == (8, 4)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    assert [LABELS[i] for i in probs.argmax(1)] == trained.predict(texts)
    # a single string in gives a single result out
    assert isinstance(trained.predict(texts[0]), str)
    assert trained.predict_proba(texts[0]).shape == (4,)
    assert trained.predict_proba([]).shape == (0, 4)


def test_batched_equals_one_by_one(trained, train_data):
    texts = [t for t, _ in train_data] + ["An unseen sentence with unknown words entirely."]
    batched = trained.predict_proba(texts)
    single = np.stack([trained.predict_proba(t) for t in texts])
    np.testing.assert_allclose(batched, single, atol=1e-5)


def test_batches_respect_the_token_bound(trained, train_data):
    texts = [t for t, _ in train_data] + ["word " * 40, "short", "A longer sentence " * 6]
    expected = np.stack([trained.predict_proba(t) for t in texts])
    seen = []
    model = trained.backend.model
    hook = model.register_forward_pre_hook(lambda mod, args, kwargs: seen.append(tuple(kwargs["input_ids"].shape)),
                                           with_kwargs=True)
    try:
        trained.batch_size, trained.max_batch_tokens = 64, 80
        np.testing.assert_allclose(trained.predict_proba(texts), expected, atol=1e-5)
    finally:
        hook.remove()
    assert sum(b for b, _ in seen) == len(texts)
    # every batch fits the bound, except a single sentence longer than the bound on its own
    assert all(b * n <= 80 or b == 1 for b, n in seen), seen
    assert max(b for b, _ in seen) > 3, seen  # short sentences share a batch: the bound, not batch_size=3, decides


@pytest.mark.parametrize("kwargs, message", [({"batch_size": 0}, "batch_size must be a positive integer, got 0"),
                                             ({"max_batch_tokens": -5}, "max_batch_tokens must be a positive")])
def test_bad_batch_parameters(trained, kwargs, message):
    with pytest.raises(ValueError, match=message):
        Classifier(trained.backend, **kwargs)


def test_save_load_gives_identical_probabilities(trained, train_data, tmp_path):
    trained.temperature = 1.7
    trained.save(tmp_path / "m")
    loaded = Classifier.load(tmp_path / "m", device="cpu")
    assert loaded.temperature == 1.7 and loaded.name == "tiny"
    texts = [t for t, _ in train_data]
    assert loaded.predict(texts) == trained.predict(texts)
    np.testing.assert_allclose(loaded.predict_proba(texts), trained.predict_proba(texts), rtol=0, atol=1e-7)
    assert not list((tmp_path / "m").glob("*.bin")) and not list((tmp_path / "m").glob("*.pt"))


def test_lora_adapter_round_trip(tiny_model, train_data, tmp_path):
    from peft import LoraConfig, get_peft_model

    base, tok = tiny_model
    base.save_pretrained(tmp_path / "base")
    tok.save_pretrained(tmp_path / "base")
    model = get_peft_model(base, LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=8, target_modules=["query", "value"],
                                            modules_to_save=["classifier"]))
    texts = [t for t, _ in train_data]
    labels = [LABELS.index(l) for _, l in train_data]
    cfg = TrainConfig(epochs=5, batch_size=8, learning_rate=1e-2, warmup_ratio=0.0, patience=0, device="cpu")
    backend = fit_transformer(cfg, texts, labels, texts, labels, "cpu", model, tok, log=lambda *_: None)
    backend.encoder = str(tmp_path / "base")
    clf = Classifier(backend, name="tiny-lora")
    clf.save(tmp_path / "lora")
    assert (tmp_path / "lora" / "adapter_model.safetensors").is_file()
    assert not (tmp_path / "lora" / "model.safetensors").exists()
    loaded = Classifier.load(tmp_path / "lora", device="cpu")
    np.testing.assert_allclose(loaded.predict_proba(texts), clf.predict_proba(texts), atol=1e-5)

    # Loading merges the adapter without peft, so labelling processes never import it.
    code = ("import sys; from framing import Classifier; "
            f"Classifier.load({str(tmp_path / 'lora')!r}, device='cpu'); print('peft' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"

    # Adapters framing cannot merge faithfully are refused by name, never half-applied.
    cfg_path = tmp_path / "lora" / "adapter_config.json"
    cfg_json = json.loads(cfg_path.read_text())
    cfg_path.write_text(json.dumps({**cfg_json, "use_dora": True}))
    with pytest.raises(ValueError, match="use_dora.*plain LoRA"):
        Classifier.load(tmp_path / "lora", device="cpu")
    cfg_path.write_text(json.dumps(cfg_json))
    from safetensors.numpy import load_file, save_file

    tensors = load_file(tmp_path / "lora" / "adapter_model.safetensors")
    save_file({**tensors, "base_model.model.bert.pooler.extra": np.zeros(3, np.float32)},
              tmp_path / "lora" / "adapter_model.safetensors")
    with pytest.raises(ValueError, match="pooler.extra"):
        Classifier.load(tmp_path / "lora", device="cpu")


def test_export_runs_in_transformers_pipeline(trained, train_data, tmp_path):
    from transformers import pipeline

    trained.temperature = 2.0
    out = export(trained, tmp_path / "hf")
    assert json.loads((out / "config.json").read_text())["id2label"] == {str(i): l for i, l in enumerate(LABELS)}
    pipe = pipeline("text-classification", model=str(out), top_k=None)
    texts = [t for t, _ in train_data]
    results = pipe(texts)
    ours = trained.predict_proba(texts)
    for res, p in zip(results, ours):
        got = {r["label"]: r["score"] for r in res}
        np.testing.assert_allclose([got[l] for l in LABELS], p, atol=1e-5)  # temperature folded into the head
    # the exported directory also loads back as a framing model
    np.testing.assert_allclose(Classifier.load(out, device="cpu").predict_proba(texts), ours, atol=1e-5)


def test_missing_model_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(f"model directory {tmp_path / 'nope'} does not exist")):
        Classifier.load(tmp_path / "nope")


def test_directory_without_model(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(FileNotFoundError, match="is not a framing model: expected framing.json"):
        Classifier.load(tmp_path)


def test_corrupt_config_and_weights(trained, tmp_path):
    path = trained.save(tmp_path / "m")
    (path / "model.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match=re.escape(f"{path / 'model.safetensors'}: corrupt safetensors file")):
        Classifier.load(path, device="cpu")
    (path / "framing.json").write_text("{not json")
    with pytest.raises(ValueError, match=re.escape(f"{path / 'framing.json'}: corrupt JSON")):
        Classifier.load(path)


def test_pickle_only_directory_is_refused(trained, tmp_path):
    path = trained.save(tmp_path / "m")
    (path / "model.safetensors").unlink()
    (path / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(FileNotFoundError, match="never unpickles"):
        Classifier.load(path, device="cpu")


def test_labels_differing_from_schema_fail_with_both_lists(trained, tmp_path):
    path = trained.save(tmp_path / "m")
    meta = json.loads((path / "framing.json").read_text())
    meta["labels"] = ["accusation", "denial", "justification", "other"]
    (path / "framing.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=re.escape(
            "declares labels ['accusation', 'denial', 'justification', 'other'], but framing expects "
            "['allegation', 'denial', 'justification', 'other']")):
        Classifier.load(path)


def test_non_string_input_is_a_type_error(trained):
    with pytest.raises(TypeError, match="item 1 is int"):
        trained.predict(["fine", 3])


def test_temperature_does_not_change_predictions(trained, train_data):
    texts = [t for t, _ in train_data]
    before = trained.predict(texts)
    trained.temperature = 3.0
    assert trained.predict(texts) == before
    assert isinstance(trained.backend, TransformerBackend)


def test_training_is_deterministic_given_the_seed(tiny_model, train_data, _tiny_model_session):
    import copy

    import torch

    runs = []
    for _ in range(2):
        model, tok = copy.deepcopy(_tiny_model_session[0]), _tiny_model_session[1]
        texts = [t for t, _ in train_data]
        labels = [LABELS.index(l) for _, l in train_data]
        cfg = TrainConfig(epochs=3, batch_size=3, learning_rate=1e-2, warmup_ratio=0.0, patience=0, device="cpu", seed=7)
        torch.manual_seed(cfg.seed)
        fit_transformer(cfg, texts, labels, texts, labels, "cpu", model, tok, log=lambda *_: None)
        runs.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(runs[0], runs[1])


def test_length_grouped_batches_cover_every_item_once():
    import torch

    from framing.training import LengthGroupedBatches

    lengths = [int(x) for x in torch.randint(1, 60, (103,), generator=torch.Generator().manual_seed(0))]
    sampler = LengthGroupedBatches(lengths, batch_size=8, generator=torch.Generator().manual_seed(1), window=4)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 13
    assert sorted(i for b in batches for i in b) == list(range(103))
    # within a window, batches hold similar lengths: the mean spread is far below random batching
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    assert spread < 20


def test_shipped_models_resolve_by_name_inside_the_package(tmp_path, monkeypatch):
    """`accurate` (the default) and `fast` resolve relative to the package, never the working directory."""
    from framing.paths import DEFAULT_MODEL, models_dir, resolve_model, shipped_models

    monkeypatch.chdir(tmp_path)
    (tmp_path / "fast").mkdir()  # a folder of that name in the working directory must not win
    assert {"accurate", "fast"} <= set(shipped_models())
    assert DEFAULT_MODEL == "accurate" and resolve_model(None) == models_dir() / "accurate"
    assert resolve_model("fast") == models_dir() / "fast"
    with pytest.raises(FileNotFoundError, match=r"model 'fastest': not a shipped model \(accurate, fast"):
        resolve_model("fastest")
