"""The review-and-retrain loop: framing review, annotate (API and a real headless browser), audit, and the train gate."""

from __future__ import annotations

import json
import os
import random
import shutil
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from framing.annotate import AnnotationStore, open_store, serve
from framing.cli import main
from framing.data import validate_record
from framing.gate import compare
from framing.labels import LABELS
from framing.report import iter_labelled
from framing.review import build_queue, read_queue, write_queue

# ---------------------------------------------------------------------------------------------
# review


def _labelled(path: Path, rows: list[tuple[str, int, str, list[float]]]) -> Path:
    """Write a labelled JSONL as framing label does: (doc_id, sent_id, text, probs)."""
    with path.open("w") as f:
        for doc, sent, text, probs in rows:
            lab = LABELS[int(np.argmax(probs))]
            f.write(json.dumps({"doc_id": doc, "sent_id": sent, "text": text, "label": lab,
                                "confidence": max(probs), "probs": dict(zip(LABELS, probs)),
                                "model": "framing-fast"}) + "\n")
    return path


WORDS = ("harbour rainfall ministry cotton verdict tribunal convoy embassy quarry lagoon parliament audit tannery "
         "village border lawsuit satellite ferry vaccine orchard pipeline refinery archive mine clinic").split()


def _sentence(rng) -> str:
    return " ".join(rng.sample(WORDS, 9)).capitalize() + "."


def _probs(rng, margin_to: float | None = None) -> list[float]:
    p = rng.dirichlet(np.ones(4)).tolist()
    if margin_to is not None:  # top two nearly equal
        a, b = sorted(range(4), key=lambda i: -p[i])[:2]
        s = p[a] + p[b]
        p[a], p[b] = s / 2 + margin_to / 2, s / 2 - margin_to / 2
    return p


def test_uncertainty_queue_is_ranked_spread_and_has_context(tmp_path):
    rng, nrng = random.Random(0), np.random.default_rng(0)
    rows = []
    for d in range(30):
        for s in range(5):
            close = d < 10 and s in (1, 2, 3)  # three close calls in each of the first ten documents
            rows.append((f"d{d}", s, _sentence(rng), _probs(nrng, 0.01 * (s + 1) if close else None)))
    path = _labelled(tmp_path / "lab.jsonl", rows)
    queue, stats = build_queue(iter_labelled(path), n=12, per_doc=2)
    assert stats["sentences"] == 150 and len(queue) == 12
    margins = []
    for q in queue:
        top = sorted(q["probs"].values(), reverse=True)
        margins.append(top[0] - top[1])
    assert margins == sorted(margins)  # smallest margin first
    per_doc = {}
    for q in queue:
        per_doc[q["doc_id"]] = per_doc.get(q["doc_id"], 0) + 1
    assert max(per_doc.values()) <= 2
    # context: the neighbours from the same document, in order
    texts = {(d, s): t for d, s, t, _ in rows}
    for q in queue:
        s = q["sent_id"]
        assert q["context_before"] == [texts[(q["doc_id"], k)] for k in range(max(0, s - 2), s)]
        assert q["context_after"] == [texts[(q["doc_id"], k)] for k in range(s + 1, min(5, s + 3))]
        assert q["reason"].startswith("margin ")


def test_near_copies_are_not_queued_twice(tmp_path):
    nrng = np.random.default_rng(1)
    base = "The ministry rejected the report on the harbour as a fabrication by hostile forces"
    rows = [(f"d{i}", 0, base + ("." if i % 2 else " again."), _probs(nrng, 0.01)) for i in range(10)]
    rows += [(f"e{i}", 0, _sentence(random.Random(i)), _probs(nrng, 0.3)) for i in range(10)]
    queue, _ = build_queue(iter_labelled(_labelled(tmp_path / "l.jsonl", rows)), n=5)
    assert sum(q["text"].startswith("The ministry rejected") for q in queue) == 1


def test_diverse_takes_labels_in_turn(tmp_path):
    nrng, rng = np.random.default_rng(2), random.Random(2)
    rows = []
    for i in range(80):  # allegations are by far the most uncertain; diverse must still take the others
        p = [0.4, 0.35, 0.15, 0.1] if i < 40 else list(np.roll([0.9, 0.05, 0.03, 0.02], i % 3 + 1))
        rows.append((f"d{i}", 0, _sentence(rng), p))
    path = _labelled(tmp_path / "l.jsonl", rows)
    unc, _ = build_queue(iter_labelled(path), n=8, strategy="uncertainty")
    div, _ = build_queue(iter_labelled(path), n=8, strategy="diverse")
    assert {q["label"] for q in unc} == {"allegation"}
    assert {q["label"] for q in div} == set(LABELS)


def test_disagreement_puts_disagreements_first(tmp_path):
    nrng, rng = np.random.default_rng(3), random.Random(3)
    rows = [(f"d{i}", 0, _sentence(rng), _probs(nrng)) for i in range(40)]
    path = _labelled(tmp_path / "l.jsonl", rows)
    flip = {rows[i][2] for i in (5, 17, 33)}

    def second(texts):  # agrees with the file except on three sentences
        out = []
        for t in texts:
            p = np.array(next(r[3] for r in rows if r[2] == t))
            out.append(np.roll(p, 1) if t in flip else p)
        return np.array(out)

    queue, stats = build_queue(iter_labelled(path), n=10, strategy="disagreement", second=second, window=7)
    assert stats["disagreements"] == 3
    assert {q["text"] for q in queue[:3]} == flip
    assert all(q["second_label"] != q["label"] for q in queue[:3])
    assert all(q["second_label"] == q["label"] for q in queue[3:])


def test_review_errors_name_the_problem(tmp_path):
    path = tmp_path / "l.jsonl"
    path.write_text(json.dumps({"doc_id": "a", "text": "x y z", "label": "other"}) + "\n")
    with pytest.raises(ValueError, match=r"l\.jsonl:1: no 'probs'"):
        build_queue(iter_labelled(path))
    with pytest.raises(ValueError, match="strategy must be one of"):
        build_queue([], strategy="random")
    with pytest.raises(ValueError, match="needs a second model"):
        build_queue([], strategy="disagreement")
    assert main(["review", str(path), "-o", str(tmp_path / "q.jsonl"), "--n", "0"]) == 1


def test_review_cli_writes_a_queue_annotate_reads(tmp_path, capsys):
    rng, nrng = random.Random(4), np.random.default_rng(4)
    path = _labelled(tmp_path / "l.jsonl", [(f"d{i // 3}", i % 3, _sentence(rng), _probs(nrng)) for i in range(30)])
    assert main(["review", str(path), "-o", str(tmp_path / "q.jsonl"), "--n", "6", "--strategy", "diverse"]) == 0
    assert "6 of 30 sentences queued (diverse" in capsys.readouterr().out
    queue = read_queue(tmp_path / "q.jsonl")
    assert [q["queue_id"] for q in queue] == list(range(6))


# ---------------------------------------------------------------------------------------------
# annotate


def _queue(tmp_path, n=5) -> Path:
    rng, nrng = random.Random(5), np.random.default_rng(5)
    rows = [(f"doc{i // 2}", i % 2, _sentence(rng), _probs(nrng)) for i in range(2 * n)]
    queue, _ = build_queue(iter_labelled(_labelled(tmp_path / "l.jsonl", rows)), n=n, per_doc=1)
    return write_queue(queue, tmp_path / "queue.jsonl")


def test_store_appends_undoes_and_continues(tmp_path):
    q = _queue(tmp_path)
    out = tmp_path / "ann.jsonl"
    store = open_store(q, out, "ana")
    first = store.state()["item"]["key"]
    store.decide(first, "denial")
    # on disk at once, in the corpus schema
    lines = out.read_text().splitlines()
    rec = json.loads(lines[0])
    assert len(lines) == 1 and rec["id"] == first and rec["label"] == "denial" and rec["annotator"] == "ana"
    assert validate_record(rec) == [] and rec["origin"] == "annotated"
    second = store.state()["item"]["key"]
    store.skip(second)
    third = store.state()["item"]["key"]
    store.decide(third, "other")
    st = store.undo()  # undoes the decision on the third
    assert st["item"]["key"] == third and len(out.read_text().splitlines()) == 1
    st = store.undo()  # and the skip
    assert st["item"]["key"] == second
    store.skip(second)
    # a new process (the server died) continues where this one stopped
    again = open_store(q, out, "ana")
    st = again.state()
    assert (st["done"], st["skipped"], st["item"]["key"]) == (1, 1, third)
    assert again.undo()["item"]["key"] == second  # history survives the restart too
    with pytest.raises(ValueError, match="label must be one of"):
        again.decide(third, "maybe")
    with pytest.raises(KeyError, match="not in the queue"):
        again.decide("nope", "other")
    with pytest.raises(ValueError, match="already has a decision"):
        again.decide(first, "other")


def test_store_refuses_an_output_from_another_queue(tmp_path):
    q = _queue(tmp_path)
    out = tmp_path / "ann.jsonl"
    out.write_text(json.dumps({"id": "elsewhere-s1", "label": "other"}) + "\n")
    with pytest.raises(ValueError, match="not in"):
        open_store(q, out, "ana")
    out.write_text("{not json\n")
    with pytest.raises(ValueError, match=r"ann\.jsonl:1: malformed annotation line"):
        open_store(q, out, "ana")


def _post(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(req, timeout=10).read())


@pytest.fixture
def server(tmp_path):
    q = _queue(tmp_path)
    store = open_store(q, tmp_path / "ann.jsonl", "tester")
    srv = serve(store, port=0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", store, tmp_path
    srv.shutdown()
    srv.server_close()


def test_http_api(server):
    url, store, tmp = server
    st = json.loads(urllib.request.urlopen(url + "/api/state", timeout=10).read())
    assert st["total"] == 5 and st["labels"] == list(LABELS)
    st = _post(url + "/api/decide", {"key": st["item"]["key"], "label": "allegation"})
    assert st["done"] == 1
    with pytest.raises(urllib.error.HTTPError) as e:
        _post(url + "/api/decide", {"key": st["item"]["key"], "label": "bogus"})
    assert e.value.code == 400 and "label must be one of" in json.loads(e.value.read())["error"]
    page = urllib.request.urlopen(url + "/", timeout=10).read().decode()
    assert "framing annotate" in page and "keydown" in page


def _chrome():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    if not (chromium and driver):
        if os.environ.get("FRAMING_REQUIRE_BROWSER") == "1":
            pytest.fail("FRAMING_REQUIRE_BROWSER=1 but no chromium/chromedriver on PATH (make browser installs them)")
        pytest.skip("no Chromium/ChromeDriver (Debian: apt-get install chromium chromium-driver; .ci/run does)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service(driver), options=opts)


def test_annotate_in_a_real_browser(server):
    """Keys 1-4, u and s in headless Chromium; every decision on disk before the next sentence shows."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, store, tmp = server
    out = tmp / "ann.jsonl"
    browser = _chrome()
    try:
        browser.get(url + "/")
        wait = WebDriverWait(browser, 10)
        key = lambda: browser.find_element(By.ID, "text").get_attribute("data-key")  # noqa: E731
        wait.until(lambda b: key())
        queue = [json.loads(x) for x in (tmp / "queue.jsonl").read_text().splitlines()]
        keys = [f"{q['doc_id']}-s{q['sent_id']}" for q in queue]
        assert key() == keys[0]
        assert browser.find_element(By.ID, "text").text == queue[0]["text"]
        assert browser.find_element(By.ID, "model-label").text == queue[0]["label"]
        body = browser.find_element(By.TAG_NAME, "body")

        def press(k, expect_key):
            body.send_keys(k)
            wait.until(lambda b: key() == expect_key and not b.execute_script("return busy"))

        press("2", keys[1])  # denial
        assert [json.loads(x)["label"] for x in out.read_text().splitlines()] == ["denial"]
        press("s", keys[2])  # skip
        press("4", keys[3])  # other
        press("u", keys[2])  # undo the "other"
        assert [json.loads(x)["label"] for x in out.read_text().splitlines()] == ["denial"]
        press("1", keys[3])
        press("3", keys[4])
        body.send_keys("3")
        wait.until(lambda b: b.find_element(By.ID, "done").is_displayed())
        recs = [json.loads(x) for x in out.read_text().splitlines()]
        assert [(r["id"], r["label"]) for r in recs] == [(keys[0], "denial"), (keys[2], "allegation"),
                                                         (keys[3], "justification"), (keys[4], "justification")]
        assert all(validate_record(r) == [] and r["annotator"] == "tester" for r in recs)
        assert [json.loads(x)["id"] for x in (tmp / "ann.jsonl.skipped").read_text().splitlines()] == [keys[1]]
        # reload: the page continues where it stopped (nothing left), and undo still works
        browser.refresh()
        wait.until(lambda b: b.find_element(By.ID, "done").is_displayed())
        browser.find_element(By.TAG_NAME, "body").send_keys("u")
        wait.until(lambda b: key() == keys[4] and b.find_element(By.ID, "item").is_displayed())
        assert len(out.read_text().splitlines()) == 3
    finally:
        browser.quit()


# ---------------------------------------------------------------------------------------------
# audit

def _synthetic_corpus(n_docs=40, per_doc=6, seed=0):
    rng = random.Random(seed)
    cues = {"allegation": ["accused", "alleged", "documented abuses by", "found evidence against"],
            "denial": ["rejected the claims against", "denied the accusations about", "called baseless the report on"],
            "justification": ["defended the policy of", "said the law permits", "argued it was lawful for"],
            "other": ["held a meeting about", "published the schedule of", "announced a visit to"]}
    recs = []
    for d in range(n_docs):
        for s in range(per_doc):
            lab = LABELS[(d + s) % 4]
            text = f"The {rng.choice(WORDS)} office {rng.choice(cues[lab])} the {rng.choice(WORDS)} {rng.choice(WORDS)}."
            recs.append({"id": f"d{d}-s{s}", "doc_id": f"d{d}", "text": text, "label": lab, "where": f"c.jsonl:{len(recs) + 1}"})
    return recs


def test_audit_finds_planted_label_errors():
    from framing.audit import audit

    recs = _synthetic_corpus()
    planted = set()
    for i in range(0, len(recs), 24):  # ten sentences get a wrong label
        recs[i]["label"] = LABELS[(LABELS.index(recs[i]["label"]) + 2) % 4]
        planted.add(recs[i]["id"])
    flagged, summary = audit(recs, features="tfidf", folds=5)
    ids = [f["id"] for f in flagged]
    # cleanlab is conservative: most planted errors found, few correct labels flagged
    assert len(set(ids) & planted) >= 5 and sum(i in planted for i in ids) >= 0.8 * len(ids), (summary, flagged)
    assert set(ids[:5]) <= planted
    f0 = next(f for f in flagged if f["id"] in planted)
    assert f0["suggested"] != f0["given"] and f0["where"].startswith("c.jsonl:")
    assert summary["records"] == len(recs) and summary["oof_macro_f1"] > 0.8
    with pytest.raises(ValueError, match="needs at least 50 documents"):
        audit(recs, features="tfidf", folds=50)


def test_audit_cli(tmp_path, capsys):
    recs = _synthetic_corpus(n_docs=20)
    recs[3]["label"] = LABELS[(LABELS.index(recs[3]["label"]) + 1) % 4]
    path = tmp_path / "train.jsonl"
    with path.open("w") as f:
        for r in recs:
            r = {k: v for k, v in r.items() if k != "where"}
            f.write(json.dumps({**r, "domain": "synthetic", "register": "wire", "origin": "written", "hard": False}) + "\n")
    out = tmp_path / "audit.jsonl"
    assert main(["audit", str(path), "--features", "tfidf", "-o", str(out), "--show", "3"]) == 0
    text = capsys.readouterr().out
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert "flagged as likely label errors" in text and rows
    assert "d0-s3" in [r["id"] for r in rows[:5]]
    assert rows[0]["where"].startswith(f"{path}:")


# ---------------------------------------------------------------------------------------------
# the gate

def test_compare_passes_and_fails():
    rng = np.random.default_rng(0)
    gold = {s: [LABELS[i] for i in rng.integers(0, 4, 300)] for s in ("test", "cross_domain", "real_dev")}
    good = {s: [g if rng.random() < 0.9 else "other" for g in v] for s, v in gold.items()}
    bad = {s: [g if rng.random() < 0.6 else "other" for g in v] for s, v in gold.items()}
    r = compare(good, bad, gold, n_boot=100)
    assert r["passed"] and r["primary"]["sets"] == ["test", "cross_domain"] and r["primary"]["diff"] > 0.2
    assert r["sets"]["real_dev"]["gates"] is False and r["primary"]["paired"]["significant"]
    assert not compare(bad, good, gold, n_boot=20)["passed"]
    assert compare(bad, good, gold, tolerance=1.0, n_boot=20)["passed"]
    assert compare(good, good, gold, n_boot=20)["passed"]  # equal is at least as good
    with pytest.raises(ValueError, match="none of the gate sets"):
        compare(good, bad, gold, gate_on=("world_heldout",), n_boot=20)


def _dataset(seed: int, shuffle_labels: bool = False):
    from datasets import Dataset, DatasetDict

    recs = _synthetic_corpus(n_docs=60, seed=seed)
    rng = random.Random(seed)
    splits = {}
    for i, r in enumerate(recs):
        d = int(r["doc_id"][1:])
        split = "train" if d < 36 else "dev" if d < 44 else "test" if d < 52 else "cross_domain"
        lab = rng.choice(LABELS) if shuffle_labels and split == "train" else r["label"]
        splits.setdefault(split, []).append({"id": r["id"], "doc_id": r["doc_id"], "text": r["text"], "label": lab,
                                             "domain": "synthetic", "split": split})
    return DatasetDict({s: Dataset.from_list(v) for s, v in splits.items()})


def test_train_with_baseline_writes_the_comparison_and_gates(tmp_path, monkeypatch, capsys):
    from framing.training import TrainConfig, train

    cfg = TrainConfig(model="tfidf-lr", name="weak", real_dev="")
    train(cfg, tmp_path / "weak", corpus=_dataset(0, shuffle_labels=True), log=lambda *_: None)
    cfg = TrainConfig(model="tfidf-lr", name="strong", real_dev="")
    _, metrics = train(cfg, tmp_path / "strong", corpus=_dataset(0), log=lambda *_: None, baseline=tmp_path / "weak")
    res = metrics["baseline_comparison"]
    assert res["passed"] and set(res["sets"]) == {"test", "cross_domain"}
    assert json.loads((tmp_path / "strong" / "baseline_comparison.json").read_text())["passed"]
    assert "PASSED" in (tmp_path / "strong" / "baseline_comparison.md").read_text()

    # through the CLI: a weak model against the strong baseline fails the gate with exit 3
    import framing.data

    monkeypatch.setattr(framing.data, "load_corpus", lambda *a, **k: _dataset(0, shuffle_labels=True))
    code = main(["train", "--set", "model=tfidf-lr", "--set", "real_dev=''", "-o", str(tmp_path / "new"),
                 "--baseline", str(tmp_path / "strong"), "--require-better"])
    err = capsys.readouterr().err
    assert code == 3 and "gate failed" in err
    assert (tmp_path / "new" / "baseline_comparison.md").is_file()
    assert main(["train", "--set", "model=tfidf-lr", "-o", str(tmp_path / "x"), "--require-better"]) == 1
    assert main(["train", "--set", "model=tfidf-lr", "-o", str(tmp_path / "y"), "--baseline", str(tmp_path / "nope")]) == 1


def test_annotate_cli_serves_and_stops_on_ctrl_c(tmp_path):
    """`framing annotate` as a user runs it: prints the URL, serves the page, Ctrl-C exits 130."""
    import re
    import signal
    import subprocess
    import sys

    q = _queue(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "framing", "annotate", str(q), "-o", str(tmp_path / "a.jsonl"),
                             "--port", "0", "--annotator", "cli"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        line = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/", line).group(0)
        st = json.loads(urllib.request.urlopen(url + "api/state", timeout=10).read())
        _post(url + "api/decide", {"key": st["item"]["key"], "label": "other"})
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
    rec = json.loads((tmp_path / "a.jsonl").read_text())
    assert rec["annotator"] == "cli" and rec["label"] == "other"
    assert main(["annotate", str(tmp_path / "missing.jsonl"), "-o", str(tmp_path / "b.jsonl")]) == 1
