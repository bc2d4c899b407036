import json
import re

import pytest

from framing.cli import main
from framing.data import SPLITS, check_corpus, load_corpus, normalize_text, read_jsonl


TOPICS = ["harvest", "tribunal", "convoy", "pipeline", "ballot", "quarry", "lagoon", "embassy", "verdict", "ferry"]


def record(i, label="other", doc="d1", text=None, **kw):
    r = {"id": f"{doc}-s{i}", "doc_id": doc, "text": text or f"Officials discussed the {TOPICS[i]} on day {i}.",
         "label": label, "domain": "test-domain", "register": "wire", "origin": "written", "hard": False}
    r.update(kw)
    return r


def write_lines(path, lines):
    path.write_text("\n".join(l if isinstance(l, str) else json.dumps(l) for l in lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ('{"id": "x", "doc_id": ', "malformed JSON"),
        (record(9, label="accusation"), "unknown label 'accusation'; expected one of ['allegation', 'denial', 'justification', 'other']"),
        ({k: v for k, v in record(9).items() if k != "domain"}, "missing field(s) ['domain']"),
        (record(9, text="   "), "field 'text' is empty"),
        (record(1, text="A different sentence with the same id."), "duplicate id 'd1-s1' (first at"),
        (record(9, hard="yes"), "field 'hard' must be bool, got str 'yes'"),
    ],
)
def test_bad_line_is_reported_with_file_and_line(tmp_path, bad_line, message):
    path = write_lines(tmp_path / "train.jsonl", [record(1), record(2), bad_line, record(4)])
    report = check_corpus([path])
    assert not report.ok
    assert [str(p) for p in report.problems] == [p for p in map(str, report.problems) if p.startswith(f"{path}:3: ")]
    assert message in str(report.problems[0])
    # the good lines are still read: nothing is dropped silently
    assert {r.line for r in report.records} >= {1, 2, 4}


def test_non_utf8_line_is_reported(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_bytes(json.dumps(record(1)).encode() + b"\n" + b'{"text": "caf\xe9"}\n')
    records, problems = read_jsonl(path)
    assert len(records) == 1
    assert str(problems[0]).startswith(f"{path}:2: not valid UTF-8")


def test_empty_file_is_a_problem(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text("\n")
    report = check_corpus([path])
    assert [str(p) for p in report.problems] == [f"{path}: file is empty: expected one JSON object per line"]


def test_missing_path_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(f"{tmp_path / 'nope.jsonl'}: no such file")):
        check_corpus([tmp_path / "nope.jsonl"])


def test_duplicates_within_and_across_splits(tmp_path):
    text = "The ministry rejected the report as politically motivated."
    train = write_lines(tmp_path / "train.jsonl", [record(1, text=text), record(2)])
    test = write_lines(tmp_path / "test.jsonl", [
        record(1, doc="d2", text="The Ministry REJECTED the report, as politically motivated!"),  # exact after normalising
        record(2, doc="d2", text="The ministry rejected the report as politically motivated, he said."),  # near
        record(3, doc="d2", text="Completely unrelated words about harvest season and rainfall."),
    ])
    report = check_corpus([train, test])
    msgs = [str(p) for p in report.problems]
    assert any(m.startswith(f"{test}:1: exact duplicate") and "[splits train / test]" in m for m in msgs), msgs
    assert any(m.startswith(f"{test}:2: near duplicate") for m in msgs), msgs
    assert not any(m.startswith(f"{test}:3:") for m in msgs)


def test_near_threshold_is_validated(tmp_path):
    path = write_lines(tmp_path / "train.jsonl", [record(1)])
    with pytest.raises(ValueError, match="near_threshold must be in"):
        check_corpus([path], near_threshold=1.5)


def test_offsets_must_match_document(tmp_path):
    docs = tmp_path / "documents"
    docs.mkdir()
    (docs / "d1.txt").write_text("First sentence here. Second one there.")
    path = write_lines(tmp_path / "test.jsonl", [
        record(1, text="First sentence here.", origin="seed", start=0, end=20),
        record(2, text="Second one there.", origin="seed", start=20, end=38),  # off by one
    ])
    report = check_corpus([path], documents_dir=docs)
    assert [p.line for p in report.problems] == [2]
    assert "offsets [20:38] do not match" in report.problems[0].message


def _tiny_corpus(tmp_path):
    corpus = tmp_path / "seeds" / "corpus"
    corpus.mkdir(parents=True)
    (tmp_path / "seeds" / "documents").mkdir()
    rows, manifest = [], {}
    labels = ["allegation", "denial", "justification", "other"]
    words = iter("harbour rainfall ministry cotton verdict tribunal convoy embassy quarry lagoon parliament "
                 "audit tannery village border lawsuit satellite ferry vaccine orchard".split())
    for d, split in enumerate(["train", "train", "dev", "test", "cross_domain"]):
        doc = f"doc{d}"
        manifest[doc] = split
        domain = "held-out" if split == "cross_domain" else "test-domain"
        rows += [record(i, label=labels[i % 4], doc=doc, domain=domain, text=f"The {next(words)} was mentioned.")
                 for i in range(4)]
    write_lines(corpus / "part.jsonl", rows)
    splits = tmp_path / "seeds" / "splits.json"
    splits.write_text(json.dumps({"documents": manifest, "cross_domain_domains": ["held-out"]}))
    return corpus, splits


def test_load_corpus_returns_datasetdict(tmp_path):
    corpus, splits = _tiny_corpus(tmp_path)
    dd = load_corpus(corpus, splits)
    assert list(dd) == list(SPLITS)
    assert {s: dd[s].num_rows for s in SPLITS} == {"train": 8, "dev": 4, "test": 4, "cross_domain": 4,
                                                   "world_heldout": 0}
    assert set(dd["cross_domain"]["domain"]) == {"held-out"}
    assert not set(dd["train"]["doc_id"]) & set(dd["test"]["doc_id"])


def test_split_rules_are_checked(tmp_path):
    corpus, splits = _tiny_corpus(tmp_path)
    manifest = json.loads(splits.read_text())
    manifest["documents"]["doc4"] = "train"  # a held-out domain leaking into train
    del manifest["documents"]["doc0"]  # a document without split
    splits.write_text(json.dumps(manifest))
    msgs = [str(p) for p in check_corpus([corpus], splits=splits).problems]
    assert any("'doc0' has no split" in m for m in msgs), msgs
    assert any("'doc4' (domain 'held-out') is in split 'train'" in m for m in msgs), msgs
    with pytest.raises(ValueError, match="problem"):
        load_corpus(corpus, splits)


def test_world_fields_and_the_world_heldout_split(tmp_path):
    real = dict(world="real", dispute="river-dam")
    docs = {"w1": "train", "w2": "world_heldout"}
    lines = [record(i, doc=d, **real) for k, d in enumerate(docs) for i in range(2 * k, 2 * k + 2)]
    corpus = write_lines(tmp_path / "corpus" / "world.jsonl", lines) if (tmp_path / "corpus").mkdir() is None else None
    splits = tmp_path / "splits.json"
    splits.write_text(json.dumps({"documents": docs, "world_heldout_disputes": ["river-dam"]}))
    msgs = [str(p) for p in check_corpus([corpus], splits=splits).problems]
    assert any("'w1' (dispute 'river-dam') is in split 'train', but world_heldout holds exactly the disputes "
               "['river-dam']" in m for m in msgs), msgs
    splits.write_text(json.dumps({"documents": {"w1": "world_heldout", "w2": "world_heldout"},
                                  "world_heldout_disputes": ["river-dam"]}))
    report = check_corpus([corpus], splits=splits)
    assert report.ok, report.problems
    assert report.counts()["world"] == {"real": 4}
    dd = load_corpus(tmp_path / "corpus", splits)
    assert dd["world_heldout"].num_rows == 4 and set(dd["world_heldout"]["dispute"]) == {"river-dam"}
    bad = write_lines(tmp_path / "bad.jsonl", [record(1, world="real"), record(2, world="fictional", dispute="x")])
    msgs = [str(p) for p in check_corpus([bad]).problems]
    assert f"{bad}:1: a record with world 'real' needs a non-empty 'dispute'" in msgs[0]
    assert f"{bad}:2: unknown world 'fictional'" in msgs[1]


def test_cli_exit_codes(tmp_path, capsys):
    good = write_lines(tmp_path / "train.jsonl", [record(1, label="denial"), record(2)])
    assert main(["data", "check", str(good)]) == 0
    out = capsys.readouterr().out
    assert "data check: 0 problems" in out and "denial" in out
    bad = write_lines(tmp_path / "bad.jsonl", [record(1), "{oops"])
    assert main(["data", "check", str(bad)]) == 1
    assert f"{bad}:2: malformed JSON" in capsys.readouterr().err


def test_normalize_text():
    assert normalize_text("  “Baseless,” he SAID…  ") == normalize_text('"baseless" he said')


def test_repo_corpus_passes_check():
    """The corpus shipped in seeds/ has zero problems and meets the issue's counts."""
    report = check_corpus()
    assert report.ok, "\n".join(map(str, report.problems[:20]))
    c = report.counts()
    assert c["sentences"] >= 2400
    assert all(c["label"][lab] >= 400 for lab in ("allegation", "denial", "justification", "other")), c["label"]
    domains = {d for d, _ in c["label_domain"]}
    registers = {r for r, _ in c["label_register"]}
    assert len(domains) >= 10 and len(registers) >= 6
    xt = sum(v for (d, _), v in c["label_domain"].items() if d == "xinjiang-tibet")
    assert xt <= 0.25 * c["sentences"]
    assert c["hard"] >= 0.25 * c["sentences"]
