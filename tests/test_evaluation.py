import json
import re

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from framing import LABELS, Classifier
from framing.calibration import fit_temperature, nll, reliability
from framing.evaluation import bootstrap_ci, evaluate, load_eval_data, paired_comparison
from framing.metrics import classification_report
from framing.model import TransformerBackend


@pytest.mark.parametrize("seed", range(5))
def test_metrics_agree_with_sklearn_on_random_data(seed):
    rng = np.random.default_rng(seed)
    y = list(rng.choice(LABELS, 97))
    p = list(rng.choice(LABELS, 97))
    rep = classification_report(y, p)
    assert rep["accuracy"] == pytest.approx(accuracy_score(y, p))
    assert rep["macro_f1"] == pytest.approx(f1_score(y, p, labels=list(LABELS), average="macro"))
    pr, rc, f, s = precision_recall_fscore_support(y, p, labels=list(LABELS), zero_division=0)
    for i, lab in enumerate(LABELS):
        assert rep["per_label"][lab] == pytest.approx({"precision": pr[i], "recall": rc[i], "f1": f[i], "support": s[i]})
    assert rep["confusion_matrix"]["rows_gold_cols_pred"] == confusion_matrix(y, p, labels=list(LABELS)).tolist()


@pytest.mark.parametrize("seed", range(5))
def test_confidence_intervals_contain_point_estimates(seed):
    rng = np.random.default_rng(seed)
    y = rng.choice(LABELS, 60)
    p = np.where(rng.random(60) < 0.6, y, rng.choice(LABELS, 60))
    ci = bootstrap_ci(y, p, n_boot=200, seed=seed)
    rep = classification_report(list(y), list(p))
    assert ci["accuracy"][0] <= rep["accuracy"] <= ci["accuracy"][1]
    assert ci["macro_f1"][0] <= rep["macro_f1"] <= ci["macro_f1"][1]
    assert ci["macro_f1"][1] - ci["macro_f1"][0] > 0


def test_always_one_class_gets_the_macro_f1_it_deserves():
    y = ["allegation"] * 40 + ["denial"] * 20 + ["justification"] * 20 + ["other"] * 20
    p = ["allegation"] * 100
    rep = classification_report(y, p)
    assert rep["accuracy"] == 0.4
    # F1 for allegation = 2*0.4*1/(1.4) = 0.571; the three others score 0
    assert rep["macro_f1"] == pytest.approx(0.5714285 / 4, rel=1e-5)
    assert [rep["per_label"][l]["f1"] for l in LABELS[1:]] == [0, 0, 0]


def test_paired_comparison_detects_a_real_difference():
    rng = np.random.default_rng(0)
    y = rng.choice(LABELS, 300)
    good = np.where(rng.random(300) < 0.9, y, rng.choice(LABELS, 300))
    bad = np.where(rng.random(300) < 0.4, y, rng.choice(LABELS, 300))
    res = paired_comparison(y, good, bad, n_boot=300)
    assert res["significant"] and res["macro_f1_diff"] > 0 and res["mcnemar"]["p"] < 0.001
    same = paired_comparison(y, good, good, n_boot=100)
    assert not same["significant"] and same["macro_f1_diff"] == 0 and same["mcnemar"]["p"] == 1.0


def test_temperature_scaling_reduces_nll_of_overconfident_logits():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 400)
    logits = rng.normal(size=(400, 4))
    logits[np.arange(400), y] += 1.0
    logits *= 6  # overconfident
    labels = [LABELS[i] for i in y]
    t = fit_temperature(logits, labels)
    assert t > 2
    assert nll(logits, labels, t) < nll(logits, labels, 1.0)
    from framing.metrics import softmax

    assert reliability(softmax(logits, t), labels)["ece"] < reliability(softmax(logits), labels)["ece"]


@pytest.fixture
def tiny_dir(tiny_model, tmp_path):
    model, tok = tiny_model
    return Classifier(TransformerBackend(model.eval(), tok), name="tiny").save(tmp_path / "tiny")


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_evaluate_writes_report_and_compares_models(tiny_dir, tmp_path):
    rows = [{"id": f"r{i}", "text": t, "label": LABELS[i % 4], "domain": "a" if i % 2 else "b"}
            for i, t in enumerate(["Soldiers burned the village.", "The ministry called it a fabrication.",
                                   "The programme lifted families out of poverty.", "The committee will meet.",
                                   "Workers said passports were taken.", "There is no forced labour.",
                                   "The detention is lawful.", "Reporters asked about trade."])]
    data = _write(tmp_path / "d.jsonl", rows)
    report = evaluate([tiny_dir, tiny_dir], [str(data)], tmp_path / "rep", n_boot=50, log=lambda *_: None)
    entry = report["data"]["d"]
    r = entry["results"][str(tiny_dir)]
    assert set(r["per_domain"]) == {"a", "b"}
    assert r["n_errors"] == len(r["errors"]) and all(
        e1["confidence"] >= e2["confidence"] for e1, e2 in zip(r["errors"], r["errors"][1:]))
    assert entry["comparisons"][0]["macro_f1_diff"] == 0
    out = tmp_path / "rep"
    assert json.loads((out / "report.json").read_text())["data"]["d"]["n"] == 8
    md = (out / "report.md").read_text()
    assert "macro-F1" in md and "Paired comparisons" in md
    assert len(list(out.glob("*.png"))) == 2


@pytest.mark.parametrize("rows, message", [
    ([{"text": "a", "label": "accusation"}], "unknown label 'accusation'"),
    ([{"text": "a"}], "expected an object with 'text' and 'label'"),
    ([{"text": "", "label": "other"}], "empty or non-string 'text'"),
])
def test_bad_eval_data_is_a_clear_error(tmp_path, rows, message):
    path = _write(tmp_path / "bad.jsonl", rows)
    with pytest.raises(ValueError, match=re.escape(f"{path}:1: {message}")):
        load_eval_data(str(path))


def test_empty_eval_data(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    with pytest.raises(ValueError, match="no labelled items"):
        load_eval_data(str(path))


def test_unloadable_model_is_a_clear_error(tmp_path):
    data = _write(tmp_path / "d.jsonl", [{"text": "a", "label": "other"}])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        evaluate([tmp_path / "nope"], [str(data)], None, log=lambda *_: None)


def test_cross_domain_holds_the_domain_out(tmp_path):
    from framing.training import TrainConfig
    from framing.evaluation import cross_domain

    cfg = TrainConfig(model="tfidf-lr", name="tfidf")
    report = cross_domain(cfg, tmp_path, domains=["pollution"], log=lambda *_: None)
    assert list(report["domains"]) == ["pollution"]
    r = report["domains"]["pollution"]
    assert r["n"] >= 200 and 0.25 < r["macro_f1"] <= 1
    assert "| pollution |" in (tmp_path / "cross_domain.md").read_text()
    with pytest.raises(ValueError, match="unknown domain"):
        cross_domain(cfg, tmp_path, domains=["atlantis"], log=lambda *_: None)
