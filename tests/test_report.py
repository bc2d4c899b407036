"""`framing.report.build_report`: a one-file HTML report from labelled JSONL, CSV and Parquet."""

import base64
import csv
import json
import re

import pytest

from framing.labels import LABELS
from framing.report import build_report, iter_labelled

SCRIPT = "<script>alert('x')</script> The ministry denied it."

# (doc_id, label, confidence, text, source, date); 3 documents, 10 sentences.
ROWS = [
    ("d1", "allegation", 0.97, "Soldiers burned the village & shot residents.", "Reuters", "2024-01-15"),
    ("d1", "allegation", 0.55, "Witnesses described beatings.", "Reuters", "2024-01-15"),
    ("d1", "denial", 0.91, SCRIPT, "Reuters", "2024-01-15"),
    ("d1", "other", 0.80, "Reporters asked about the trade talks.", "Reuters", "2024-01-15"),
    ("d2", "denial", 0.88, "There is no forced labour in our factories.", "Xinhua", "2024-02-03"),
    ("d2", "justification", 0.76, "The programme lifted families out of poverty.", "Xinhua", "2024-02-03"),
    ("d2", "justification", 0.45, "The detention is lawful.", "Xinhua", "2024-02-03"),
    ("d3", "allegation", 0.66, "Workers said passports were confiscated.", "AP <b>wire</b>", "2024-02-20"),
    ("d3", "other", 0.93, "The committee will meet in Geneva.", "AP <b>wire</b>", "2024-02-20"),
    ("d3", "allegation", 0.99, "Satellite images show new camps.", "AP <b>wire</b>", "2024-02-20"),
]


def _records():
    sent = {}
    for doc, label, conf, text, source, day in ROWS:
        k = sent[doc] = sent.get(doc, -1) + 1
        rest = round((1 - conf) / 3, 4)
        yield {"doc_id": doc, "sent_id": k, "start": 0, "end": len(text), "text": text, "label": label,
               "confidence": conf, "probs": {lab: conf if lab == label else rest for lab in LABELS},
               "model": "tiny-model", "source": source, "date": day, "note": "not a group column"}


def write_jsonl(path, records=None):
    with path.open("w", encoding="utf-8") as f:
        for r in records or _records():
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return path


def write_csv(path, flat_probs=True):
    rows = []
    for r in _records():
        probs = r.pop("probs")
        if flat_probs:
            r.update({f"prob_{lab}": p for lab, p in probs.items()})
        else:
            r["probs"] = json.dumps(probs)
        rows.append(r)
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def write_parquet(path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.Table.from_pylist(list(_records())), path)
    return path


def _check_report(html):
    assert html.startswith("<!DOCTYPE html>")
    assert "10 sentences in 3 documents" in html
    assert "tiny-model" in html
    # Counts: 4 allegations of 10 (40.0%), 2 denials, 2 justifications, 2 others.
    assert re.search(r"allegation</td><td class=\"num\">4</td><td class=\"num\">40\.0%</td>", html)
    assert re.search(r"denial</td><td class=\"num\">2</td><td class=\"num\">20\.0%</td>", html)
    # Low-confidence share: 1 of 4 allegations is below 0.6.
    assert '<td class="num">1</td><td class="num">25.0%</td>' in html
    # Group columns are found automatically; date is grouped by month; other columns are not.
    assert 'id="by-source"' in html and 'id="by-date"' in html and "by-note" not in html
    for value in ("Reuters", "Xinhua", "AP &lt;b&gt;wire&lt;/b&gt;", "2024-01", "2024-02"):
        assert f"<td>{value}</td>" in html
    assert "2024-02-03" not in html
    # Example texts are escaped; the report has no script at all.
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "<script" not in html.lower()
    assert "village &amp; shot" in html
    # Self-contained: only embedded PNG images, no external assets.
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) >= 5  # labels, confidence, documents, source, date
    assert all(base64.b64decode(img)[:8] == b"\x89PNG\r\n\x1a\n" for img in images)
    assert not re.search(r'(?:src|href)="(?!data:|#)', html)


def test_report_from_jsonl(tmp_path):
    out = build_report(write_jsonl(tmp_path / "labelled.jsonl"), tmp_path / "sub" / "report.html")
    assert out == tmp_path / "sub" / "report.html" and out.is_file()
    html = out.read_text(encoding="utf-8")
    _check_report(html)
    assert str(tmp_path / "labelled.jsonl") in html
    # Documents with most allegations (share) and denials are ranked.
    assert "Highest share of allegations" in html and "Highest share of denials" in html
    assert html.index("<code>d3</code>", html.index("Highest share of allegations")) < \
        html.index("<code>d1</code>", html.index("Highest share of allegations"))


@pytest.mark.parametrize("flat_probs", [True, False], ids=["prob-columns", "probs-json"])
def test_report_from_csv(tmp_path, flat_probs):
    out = build_report(write_csv(tmp_path / "labelled.csv", flat_probs), tmp_path / "report.html")
    html = out.read_text(encoding="utf-8")
    _check_report(html)
    assert "mean probability" in html  # probs were parsed in both layouts


def test_report_from_parquet(tmp_path):
    out = build_report(write_parquet(tmp_path / "labelled.parquet"), tmp_path / "report.html")
    _check_report(out.read_text(encoding="utf-8"))


def test_top_k_by_and_max_docs(tmp_path):
    path = write_jsonl(tmp_path / "labelled.jsonl")
    html = build_report(path, tmp_path / "r.html", by=["source"], top_k=1, max_docs=2).read_text(encoding="utf-8")
    examples = html[html.index('id="examples"'):]
    assert "Satellite images show new camps." in examples  # the most confident allegation (0.99)
    assert "Soldiers burned" not in examples  # the second most confident one (0.97)
    assert 'id="by-source"' in html and 'id="by-date"' not in html
    assert "the 2 documents with most sentences (of 3)" in html

    html = build_report(path, tmp_path / "r.html", by=[], top_k=0).read_text(encoding="utf-8")
    assert 'id="by-' not in html and 'id="examples"' not in html

    with pytest.raises(ValueError, match="no column 'outlet' to group by"):
        build_report(path, tmp_path / "r.html", by=["outlet"])


def test_odd_values_do_not_break_plots(tmp_path):
    records = list(_records())
    for r in records:
        r["doc_id"] = "a $b$ " + r["doc_id"]  # would be mathtext in matplotlib
        r["date"] = {"2024-01-15": "15 January 2024", "2024-02-03": None}.get(r["date"], "sometime")
        del r["confidence"]  # falls back to probs[label]
    html = build_report(write_jsonl(tmp_path / "x.jsonl", records), tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<td>2024-01</td>" in html and "(unparsed date)" in html and "(missing)" in html
    assert "a $b$ d1" in html and "0.990" in html


def test_reading_is_lazy(tmp_path):
    path = tmp_path / "x.jsonl"
    write_jsonl(path)
    with path.open("a") as f:
        f.write("{broken\n")
    first = next(iter_labelled(path))
    assert first.label == "allegation" and first.where == f"{path}:1"


def _bad_jsonl(tmp_path, line):
    records = [json.dumps(r) for r in _records()]
    records[2] = line
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(records) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("line, message", [
    ('{"doc_id": "d1", "label": "denial"', "malformed JSON"),
    ('{"doc_id": "d1", "text": "no label here"}', "no 'label' field"),
    ('{"doc_id": "d1", "text": "x", "label": "accusation"}', "unknown label 'accusation'"),
    ('{"doc_id": "d1", "text": "x", "label": "denial", "confidence": 7}', "confidence 7 is outside"),
    ('{"doc_id": "d1", "text": "x", "label": "denial", "probs": {"lie": 1.0}}', "unknown label"),
    ('["d1", "denial"]', "expected a JSON object"),
])
def test_bad_jsonl_names_file_and_line(tmp_path, line, message):
    path = _bad_jsonl(tmp_path, line)
    with pytest.raises(ValueError, match=re.escape(f"{path}:3: ") + ".*" + re.escape(message)):
        build_report(path, tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


def test_bad_csv_names_file_and_line(tmp_path):
    path = write_csv(tmp_path / "bad.csv")
    text = path.read_text(encoding="utf-8").replace(",justification,", ",excuse,", 1)
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(f"{path}:7: unknown label 'excuse'")):
        build_report(path, tmp_path / "r.html")

    nolabel = tmp_path / "nolabel.csv"
    nolabel.write_text("doc_id,text,tag\nd1,hello,denial\n", encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(f"{nolabel}:1: no 'label' column")):
        build_report(nolabel, tmp_path / "r.html")


def test_parquet_without_label(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "nolabel.parquet"
    pq.write_table(pa.table({"doc_id": ["d1"], "text": ["hi"]}), path)
    with pytest.raises(ValueError, match=re.escape(f"{path}: no 'label' column")):
        build_report(path, tmp_path / "r.html")


@pytest.mark.parametrize("name, content", [("empty.jsonl", ""), ("blank.jsonl", "\n\n"),
                                            ("empty.csv", ""), ("header.csv", "doc_id,text,label\n")])
def test_empty_file(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(f"{path}: no labelled sentences")):
        build_report(path, tmp_path / "r.html")


def test_empty_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"doc_id": pa.array([], pa.string()), "label": pa.array([], pa.string())}), path)
    with pytest.raises(ValueError, match=re.escape(f"{path}: no labelled sentences")):
        build_report(path, tmp_path / "r.html")


def test_unsupported_and_missing(tmp_path):
    path = tmp_path / "labelled.txt"
    path.write_text("hello", encoding="utf-8")
    with pytest.raises(ValueError, match=r"cannot tell the format \(extension '.txt'"):
        build_report(path, tmp_path / "r.html")
    with pytest.raises(FileNotFoundError):
        build_report(tmp_path / "nope.jsonl", tmp_path / "r.html")
