"""Batch labelling: formats, streaming, resume, bad input."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from framing import LABELS, Classifier
from framing.batch import label_stream, run_label_job
from framing.cli import main
from framing.io import Document, iter_documents
from framing.model import TransformerBackend

SENTENCES = ["Soldiers burned the village, witnesses said.", "The ministry called the report a fabrication.",
             "There is no forced labour in our factories.", "The committee will meet again in March.",
             "The programme lifted families out of poverty."]


@pytest.fixture
def model_dir(tiny_model, tmp_path_factory):
    model, tok = tiny_model
    return Classifier(TransformerBackend(model.eval(), tok), name="tiny").save(tmp_path_factory.mktemp("m") / "model")


@pytest.fixture
def clf(model_dir):
    return Classifier.load(model_dir, device="cpu")


def docs_jsonl(path, n, extra=True):
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            text = " ".join(SENTENCES[(i + k) % 5] for k in range(1 + i % 3)) + f" Item {i} closed."
            rec = {"id": f"d{i}", "text": text}
            if extra:
                rec["source"] = f"outlet-{i % 3}"
            f.write(json.dumps(rec) + "\n")
    return path


def read_jsonl(path):
    return [json.loads(l) for l in open(path, encoding="utf-8")]


def test_jsonl_in_jsonl_out_with_pass_through(clf, tmp_path):
    inp = docs_jsonl(tmp_path / "in.jsonl", 20)
    stats = run_label_job(clf, [str(inp)], tmp_path / "out.jsonl", window=7, progress=False, log=lambda *_: None)
    rows = read_jsonl(tmp_path / "out.jsonl")
    assert len(rows) == stats.sentences
    src = {json.loads(l)["id"]: json.loads(l)["text"] for l in open(inp)}
    for r in rows:
        assert src[r["doc_id"]][r["start"]:r["end"]] == r["text"]
        assert r["source"].startswith("outlet-") and r["label"] in LABELS
    # input order is kept
    order = list(dict.fromkeys(r["doc_id"] for r in rows))
    assert order == [f"d{i}" for i in range(20)]
    # exact duplicate sentences were labelled once
    assert stats.labelled < stats.sentences
    assert not (tmp_path / "out.jsonl.partial").exists()


def test_output_formats_agree(clf, tmp_path):
    import pyarrow.parquet as pq

    inp = docs_jsonl(tmp_path / "in.jsonl", 12)
    outs = {}
    for fmt in ("jsonl", "csv", "parquet"):
        run_label_job(clf, [str(inp)], tmp_path / f"out.{fmt}", window=5, progress=False, log=lambda *_: None)
    outs["jsonl"] = read_jsonl(tmp_path / "out.jsonl")
    with open(tmp_path / "out.csv", newline="", encoding="utf-8") as f:
        outs["csv"] = list(csv.DictReader(f))
    outs["parquet"] = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert len({len(v) for v in outs.values()}) == 1
    for a, b, c in zip(outs["jsonl"], outs["csv"], outs["parquet"]):
        assert a["text"] == b["text"] == c["text"] and a["label"] == b["label"] == c["label"]
        assert float(b["prob_denial"]) == pytest.approx(a["probs"]["denial"]) == c["probs"]["denial"]


@pytest.mark.parametrize("suffix", ["csv", "tsv", "parquet"])
def test_tabular_inputs(clf, tmp_path, suffix):
    rows = [{"id": f"r{i}", "body": SENTENCES[i], "date": f"2025-0{i + 1}-01"} for i in range(5)]
    path = tmp_path / f"in.{suffix}"
    if suffix == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=["id", "body", "date"], delimiter="\t" if suffix == "tsv" else ",")
            w.writeheader()
            w.writerows(rows)
    out = tmp_path / "out.jsonl"
    run_label_job(clf, [str(path)], out, text_column="body", unit="sentence", progress=False, log=lambda *_: None)
    got = read_jsonl(out)
    assert [(r["doc_id"], r["text"], r["date"]) for r in got] == [(r["id"], r["body"], r["date"]) for r in rows]


def test_txt_folder_recursive_with_glob(clf, tmp_path):
    (tmp_path / "corpus" / "2024").mkdir(parents=True)
    (tmp_path / "corpus" / "a.txt").write_text(SENTENCES[0] + " " + SENTENCES[1])
    (tmp_path / "corpus" / "2024" / "b.txt").write_text(SENTENCES[2])
    (tmp_path / "corpus" / "notes.md").write_text("not labelled")
    out = tmp_path / "out.jsonl"
    stats = run_label_job(clf, [str(tmp_path / "corpus")], out, progress=False, log=lambda *_: None)
    rows = read_jsonl(out)
    assert [r["doc_id"] for r in rows] == ["2024/b", "a", "a"] and stats.documents == 2


def test_stdin(model_dir, tmp_path):
    inp = docs_jsonl(tmp_path / "in.jsonl", 3)
    out = tmp_path / "out.jsonl"
    res = subprocess.run([sys.executable, "-m", "framing", "label", "-", "-o", str(out), "--model", str(model_dir),
                          "--device", "cpu"], stdin=open(inp, "rb"), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert {r["doc_id"] for r in read_jsonl(out)} == {"d0", "d1", "d2"}


def test_existing_output_needs_force(clf, tmp_path):
    inp = docs_jsonl(tmp_path / "in.jsonl", 2)
    out = tmp_path / "out.jsonl"
    out.write_text("precious\n")
    with pytest.raises(FileExistsError, match="pass --force"):
        run_label_job(clf, [str(inp)], out, progress=False, log=lambda *_: None)
    assert out.read_text() == "precious\n"
    run_label_job(clf, [str(inp)], out, force=True, progress=False, log=lambda *_: None)
    assert len(read_jsonl(out)) > 2


def test_malformed_rows_fail_or_go_to_rejects(clf, tmp_path):
    inp = tmp_path / "in.jsonl"
    inp.write_bytes(b'{"id": "a", "text": "Fine sentence here."}\n'
                    b'{"id": "b", "text": "broken\n'
                    b'{"id": "c", "body": "no text column"}\n'
                    b'{"id": "d", "text": "caf\xe9 au lait"}\n'
                    b'{"id": "e", "text": ""}\n'
                    b'{"id": "f", "text": "Last good one."}\n')
    with pytest.raises(ValueError, match=f"{inp}:2: malformed JSON"):
        run_label_job(clf, [str(inp)], tmp_path / "out.jsonl", progress=False, log=lambda *_: None)
    stats = run_label_job(clf, [str(inp)], tmp_path / "out.jsonl", on_error="skip", force=True, progress=False,
                          log=lambda *_: None)
    rows = read_jsonl(tmp_path / "out.jsonl")
    assert [r["doc_id"] for r in rows] == ["a", "f"]  # the empty text yields no rows
    rejects = read_jsonl(tmp_path / "out.jsonl.rejects.jsonl")
    assert [r["where"] for r in rejects] == [f"{inp}:2", f"{inp}:3", f"{inp}:4"]
    assert "not valid UTF-8" in rejects[2]["reason"] and "no text column 'text'" in rejects[1]["reason"]
    assert stats.rejects == 3 and stats.empty_documents == 1


def test_csv_bad_row_and_non_utf8(clf, tmp_path):
    inp = tmp_path / "in.csv"
    inp.write_bytes(b"id,text\nx,Good sentence.\ny,\"unterminated\nz,bad \xff byte\n")
    stats = run_label_job(clf, [str(inp)], tmp_path / "o.jsonl", on_error="skip", progress=False, log=lambda *_: None)
    assert stats.rejects >= 1
    reasons = [r["reason"] for r in read_jsonl(tmp_path / "o.jsonl.rejects.jsonl")]
    assert reasons


def test_empty_input_gives_empty_output(clf, tmp_path):
    inp = tmp_path / "in.jsonl"
    inp.write_text("")
    stats = run_label_job(clf, [str(inp)], tmp_path / "o.jsonl", progress=False, log=lambda *_: None)
    assert stats.sentences == 0 and (tmp_path / "o.jsonl").read_text() == ""


def test_over_long_sentences_are_truncated_and_counted(clf):
    long = "word " * 400 + "end."
    stats_docs = [Document("a", long, "x:1"), Document("b", "Short one.", "x:2")]
    from framing.batch import LabelStats

    stats = LabelStats()
    out = list(label_stream(clf, stats_docs, unit="sentence", stats=stats))
    assert stats.truncated == 1 and len(out) == 2


def test_kill_and_resume_gives_exactly_the_uninterrupted_records(model_dir, tmp_path):
    inp = docs_jsonl(tmp_path / "in.jsonl", 4000)
    ref = tmp_path / "ref.jsonl"
    cmd = [sys.executable, "-m", "framing", "label", str(inp), "--model", str(model_dir), "--device", "cpu",
           "--window", "64", "--quiet"]
    subprocess.run(cmd + ["-o", str(ref)], check=True, capture_output=True, timeout=600)
    out = tmp_path / "out.jsonl"
    proc = subprocess.Popen(cmd + ["-o", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    manifest = tmp_path / "out.jsonl.partial" / "manifest.json"
    deadline = time.time() + 300
    while time.time() < deadline:
        if manifest.exists() and len(json.loads(manifest.read_text())["parts"]) >= 3:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists(), "the run finished before it could be killed"
    # a second start without --resume refuses to clobber the interrupted run
    res = subprocess.run(cmd + ["-o", str(out)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 1 and "--resume" in res.stderr
    subprocess.run(cmd + ["-o", str(out), "--resume"], check=True, capture_output=True, timeout=600)
    assert out.read_bytes() == ref.read_bytes()


def test_iter_documents_names_file_and_line(tmp_path):
    inp = tmp_path / "in.jsonl"
    inp.write_text('{"text": "ok"}\n[1, 2]\n')
    with pytest.raises(ValueError, match=f"{inp}:2: expected a JSON object"):
        list(iter_documents([str(inp)]))


def test_cli_summary(model_dir, tmp_path, capsys):
    inp = docs_jsonl(tmp_path / "in.jsonl", 5)
    assert main(["label", str(inp), "-o", str(tmp_path / "o.parquet"), "--model", str(model_dir), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "sentences/s" in err and "truncated" in err and "rejected input rows: 0" in err


def test_label_then_report_from_the_cli(model_dir, tmp_path):
    folder = tmp_path / "articles"
    folder.mkdir()
    for i in range(3):
        (folder / f"a{i}.txt").write_text(" ".join(SENTENCES[i:i + 3]))
    out = tmp_path / "labels.parquet"
    assert main(["label", str(folder), "-o", str(out), "--model", str(model_dir), "--quiet"]) == 0
    html = tmp_path / "report.html"
    assert main(["report", str(out), "-o", str(html)]) == 0
    body = html.read_text()
    assert "data:image/png;base64" in body and "a1" in body
