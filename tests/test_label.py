import csv
import json

import pytest

from framing import LABELS, Classifier
from framing.cli import main
from framing.segment import split_sentences
from framing.model import TransformerBackend


@pytest.fixture
def model_dir(tiny_model, tmp_path):
    model, tok = tiny_model
    return Classifier(TransformerBackend(model.eval(), tok), name="tiny").save(tmp_path / "model")


DOC = ("Soldiers burned the village, witnesses said. The ministry called the report a fabrication.\n\n"
       "Mr. Reyes met Dr. Lee in the U.S. on Feb. 3. \"There is no forced labour,\" he said. The committee will meet again.")


def test_split_sentences_offsets_and_abbreviations():
    spans = split_sentences(DOC)
    sents = [DOC[s:e] for s, e in spans]
    assert sents == [
        "Soldiers burned the village, witnesses said.",
        "The ministry called the report a fabrication.",
        "Mr. Reyes met Dr. Lee in the U.S. on Feb. 3.",
        "\"There is no forced labour,\" he said.",
        "The committee will meet again.",
    ]
    assert split_sentences("   \n\n  ") == []


def test_label_txt_writes_records_with_offsets(model_dir, tmp_path):
    doc = tmp_path / "report.txt"
    doc.write_text(DOC, encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert main(["label", str(doc), "-o", str(out), "--model", str(model_dir), "--device", "cpu"]) == 0
    rows = [json.loads(l) for l in out.read_text().splitlines()]
    assert len(rows) == 5
    for k, r in enumerate(rows):
        assert set(r) == {"doc_id", "sent_id", "start", "end", "text", "label", "confidence", "probs", "model"}
        assert r["doc_id"] == "report" and r["sent_id"] == k and r["model"] == "tiny"
        assert DOC[r["start"]:r["end"]] == r["text"]
        assert r["label"] in LABELS and list(r["probs"]) == list(LABELS)
        assert r["confidence"] == max(r["probs"].values())
        assert abs(sum(r["probs"].values()) - 1) < 1e-3
    # an existing output is not overwritten without --force
    assert main(["label", str(doc), "-o", str(out), "--model", str(model_dir)]) == 1
    assert main(["label", str(doc), "-o", str(out), "--model", str(model_dir), "--force"]) == 0


def test_label_jsonl_and_csv_units(model_dir, tmp_path):
    jl = tmp_path / "docs.jsonl"
    jl.write_text(json.dumps({"id": "a", "body": DOC}) + "\n" + json.dumps({"id": "b", "body": "One sentence only."}) + "\n")
    out = tmp_path / "o1.jsonl"
    assert main(["label", str(jl), "-o", str(out), "--model", str(model_dir), "--text-column", "body"]) == 0
    rows = [json.loads(l) for l in out.read_text().splitlines()]
    assert [r["doc_id"] for r in rows] == ["a"] * 5 + ["b"]
    cs = tmp_path / "sents.csv"
    with cs.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "text"])
        w.writerow(["s1", "First sentence. Still the same record."])
        w.writerow(["s2", "Another."])
    out2 = tmp_path / "o2.jsonl"
    assert main(["label", str(cs), "-o", str(out2), "--model", str(model_dir), "--unit", "sentence"]) == 0
    rows = [json.loads(l) for l in out2.read_text().splitlines()]
    assert [(r["doc_id"], r["text"]) for r in rows] == [("s1", "First sentence. Still the same record."), ("s2", "Another.")]


def test_label_missing_text_column_names_file_and_line(model_dir, tmp_path, capsys):
    jl = tmp_path / "docs.jsonl"
    jl.write_text(json.dumps({"text": "fine"}) + "\n" + json.dumps({"body": "no text key"}) + "\n")
    assert main(["label", str(jl), "--model", str(model_dir)]) == 1
    assert f"{jl}:2: no text column 'text' (found ['body'])" in capsys.readouterr().err


def test_label_prints_table_without_output(model_dir, tmp_path, capsys):
    doc = tmp_path / "report.txt"
    doc.write_text(DOC)
    assert main(["label", str(doc), "--model", str(model_dir)]) == 0
    out = capsys.readouterr().out
    assert "The committee will meet again." in out and "label" in out.splitlines()[0]


def test_missing_model_is_a_clear_cli_error(tmp_path, capsys):
    doc = tmp_path / "report.txt"
    doc.write_text(DOC)
    assert main(["label", str(doc), "--model", str(tmp_path / "nope")]) == 1
    assert f"model directory {tmp_path / 'nope'} does not exist" in capsys.readouterr().err
