"""Reliability of batch labelling: labels independent of order, batching and resume point (fp32 and
int8); no stuck jobs; malformed CSV never merges rows; a fixed Parquet schema; one way for errors."""

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from framing import Classifier
from framing.batch import plan_label_job, run_label_job
from framing.cli import build_parser, main
from framing.io import InputError, iter_documents
from framing.model import TransformerBackend, length_batches
from framing.quantize import MATMUL_ENV, Int8Linear, int8_matmul, int8_matmul_mode, quantize_int8

WORDS = ("soldiers burned the village witnesses said ministry called report fabrication there is no forced "
         "labour in our factories committee will meet again march programme lifted families out of poverty").split()


def quiet(*_):
    pass


@pytest.fixture
def model_dir(tiny_model, tmp_path_factory):
    model, tok = tiny_model
    return Classifier(TransformerBackend(model.eval(), tok), name="tiny").save(tmp_path_factory.mktemp("m") / "model")


def write_docs(path, n, seed=0, bad=None):
    """Documents of 1-4 sentences of varied length (so batches mix lengths); line ``bad`` (0-based)
    is malformed JSON when given."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            sents = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 14))).capitalize() + "."
                     for _ in range(rng.randint(1, 4))]
            f.write(("{bad json" if i == bad else json.dumps({"id": f"d{i}", "text": " ".join(sents), "n": i})) + "\n")
    return path


def read(path):
    return [json.loads(line) for line in open(path, encoding="utf-8")]


MODES = ("fp32", "int8", "int8-recheck")
"""fp32; int8 alone; int8 with near-ties relabelled in fp32 (a margin that rechecks about half)."""


def mode_settings(mode, model_dir):
    """``(quantize, recheck)`` for a mode; the recheck margin is the median int8 top-two margin of
    sentences like ``write_docs``', so that some sentences are rechecked and some are not."""
    if mode != "int8-recheck":
        return mode != "fp32", (0.0 if mode == "int8" else None)
    rng = random.Random(5)
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 14))).capitalize() + "." for _ in range(200)]
    top2 = np.sort(Classifier.load(model_dir, device="cpu", quantize=True, recheck=0).logits(texts), axis=1)[:, -2:]
    return True, float(np.median(top2[:, 1] - top2[:, 0]))


def by_sentence(rows):
    return {(r["doc_id"], r["sent_id"]): r for r in rows}


# ------------------------------------------------------------------------ int8 arithmetic


def test_int8_linear_rows_do_not_depend_on_batch_mates():
    torch.manual_seed(0)
    lin = torch.nn.Linear(48, 24)
    q = Int8Linear(lin)
    x = torch.randn(10, 48)
    x[3] *= 50  # one row with a far larger range: a per-tensor scale would coarsen every other row
    full = q(x)
    for i in range(10):
        assert torch.equal(q(x[i:i + 1]), full[i:i + 1])
    # and close to fp32 (symmetric int8, per-row and per-channel scales)
    ref = lin(x)
    rel = (full - ref).abs().max(dim=1).values / ref.abs().max(dim=1).values
    assert rel.max() < 0.05


def test_fp32_int8_matmul_gives_the_integer_products_bit_for_bit():
    gen = torch.Generator().manual_seed(0)
    xq = torch.randint(-127, 128, (37, 1536), dtype=torch.int8, generator=gen)
    wq = torch.randint(-127, 128, (1536, 70), dtype=torch.int8, generator=gen)
    # two rows whose partial sums leave fp32's exact-integer range (> 2**24)
    xq[5] = torch.randint(100, 128, (1536,), dtype=torch.int8, generator=gen)
    xq[6] = -xq[5]
    wq[:, :20] = torch.randint(100, 128, (1536, 20), dtype=torch.int8, generator=gen)
    want = torch._int_mm(xq, wq).float()
    assert not torch.equal((xq.float() @ wq.float())[5:7], want[5:7])  # plain fp32 would round them
    assert torch.equal(int8_matmul(xq, wq, wq.float()), want)
    assert torch.equal(int8_matmul(xq, wq), want)


def test_int8_linear_gives_the_same_bits_on_either_matmul_path(monkeypatch):
    torch.manual_seed(1)
    lin = torch.nn.Linear(64, 40)
    x = torch.randn(2, 9, 64)
    out = {}
    for mode in ("int", "fp32"):
        monkeypatch.setenv(MATMUL_ENV, mode)
        int8_matmul_mode.cache_clear()
        out[mode] = Int8Linear(lin)(x)
    monkeypatch.setenv(MATMUL_ENV, "int16")
    int8_matmul_mode.cache_clear()
    try:
        with pytest.raises(ValueError, match="FRAMING_INT8_MATMUL must be 'int' or 'fp32', got 'int16'"):
            int8_matmul_mode()
    finally:
        monkeypatch.delenv(MATMUL_ENV)
        int8_matmul_mode.cache_clear()
    assert torch.equal(out["int"], out["fp32"])
    assert int8_matmul_mode() in ("int", "fp32")


def test_quantize_int8_replaces_every_linear(tiny_model):
    model, _ = tiny_model
    n_linear = sum(isinstance(m, torch.nn.Linear) for m in model.bert.modules())
    quantize_int8(model.bert)
    assert n_linear > 0 and not any(isinstance(m, torch.nn.Linear) for m in model.bert.modules())
    assert sum(isinstance(m, Int8Linear) for m in model.bert.modules()) == n_linear
    assert isinstance(model.classifier, torch.nn.Linear)  # the head was not passed in


def test_length_batches_hold_one_length_and_respect_bounds():
    lengths = [5, 9, 5, 5, 9, 12, 5, 5, 40]
    batches = length_batches(lengths, batch_size=3, max_batch_tokens=20)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        assert len({lengths[i] for i in b}) == 1
        assert len(b) <= 3 and (len(b) * lengths[b[0]] <= 20 or len(b) == 1)
    padded = length_batches(lengths, batch_size=64, max_batch_tokens=10_000, exact=False)
    assert len(padded) == 1


# ------------------------------------------------------------ labels depend on the sentence only


@pytest.mark.parametrize("mode", MODES)
def test_labels_do_not_depend_on_order_batch_size_or_window(model_dir, tmp_path, mode):
    quantize, recheck = mode_settings(mode, model_dir)
    inp = write_docs(tmp_path / "in.jsonl", 120)
    lines = open(inp).read().splitlines()
    random.Random(1).shuffle(lines)
    shuffled = tmp_path / "shuffled.jsonl"
    shuffled.write_text("\n".join(lines) + "\n")

    results = []
    for k, (path, batch_size, window) in enumerate([(inp, 64, 2048), (shuffled, 1, 7), (inp, 5, 1), (shuffled, 17, 50)]):
        clf = Classifier.load(model_dir, device="cpu", batch_size=batch_size, quantize=quantize, recheck=recheck)
        out = tmp_path / f"out{k}.jsonl"
        run_label_job(clf, [str(path)], out, window=window, progress=False, log=quiet)
        results.append(by_sentence(read(out)))
        if mode == "int8-recheck":  # both paths really ran
            assert 0 < clf.backend.rechecked < len(results[-1])
    ref = results[0]
    for other in results[1:]:
        assert other.keys() == ref.keys()
        for key, r in ref.items():
            assert other[key]["label"] == r["label"], key
            np.testing.assert_allclose([other[key]["probs"][l] for l in r["probs"]], list(r["probs"].values()),
                                       atol=1e-4)


class InterruptAfter:
    """Wraps a classifier; raises KeyboardInterrupt on the n-th call to the model."""

    def __init__(self, clf, n):
        self.clf, self.n = clf, n
        self.calls = 0
        if hasattr(clf, "submit"):  # a WorkerPool
            self.submit = self._submit

    def __getattr__(self, name):
        return getattr(self.clf, name)

    def predict_proba(self, texts):
        self.calls += 1
        if self.calls == self.n:
            raise KeyboardInterrupt
        return self.clf.predict_proba(texts)

    def _submit(self, texts):
        self.calls += 1
        if self.calls == self.n:
            raise KeyboardInterrupt
        return self.clf.submit(texts)


@pytest.mark.parametrize("mode", MODES)
def test_resume_at_any_window_gives_the_uninterrupted_output(model_dir, tmp_path, mode):
    quantize, recheck = mode_settings(mode, model_dir)
    inp = write_docs(tmp_path / "in.jsonl", 60)
    clf = Classifier.load(model_dir, device="cpu", quantize=quantize, recheck=recheck)
    ref = tmp_path / "ref.jsonl"
    run_label_job(clf, [str(inp)], ref, window=16, progress=False, log=quiet)
    for stop in (1, 2, 5, 9):
        out = tmp_path / f"out{stop}.jsonl"
        with pytest.raises(KeyboardInterrupt):
            run_label_job(InterruptAfter(clf, stop), [str(inp)], out, window=16, progress=False, log=quiet)
        assert not out.exists()
        # resume with another batch size: the committed and the new records must still agree
        again = Classifier.load(model_dir, device="cpu", quantize=quantize, recheck=recheck, batch_size=3)
        run_label_job(again, [str(inp)], out, window=16, resume=True, progress=False, log=quiet)
        assert out.read_bytes() == ref.read_bytes(), stop


@pytest.mark.parametrize("mode", MODES)
def test_workers_give_the_single_process_output_and_resume(model_dir, tmp_path, mode):
    from framing.batch import WorkerPool

    quantize, recheck = mode_settings(mode, model_dir)
    inp = write_docs(tmp_path / "in.jsonl", 80, bad=33)
    ref = tmp_path / "ref.jsonl"
    run_label_job(Classifier.load(model_dir, device="cpu", quantize=quantize, recheck=recheck), [str(inp)], ref,
                  window=16,
                  on_error="skip", progress=False, log=quiet)
    with WorkerPool(str(model_dir), 2, quantize=quantize, recheck=recheck) as pool:
        out = tmp_path / "out.jsonl"
        stats = run_label_job(pool, [str(inp)], out, window=16, on_error="skip", progress=False, log=quiet)
        assert out.read_bytes() == ref.read_bytes() and stats.rejects == 1
        assert read(tmp_path / "out.jsonl.rejects.jsonl") == read(tmp_path / "ref.jsonl.rejects.jsonl")
        # interrupted with windows in flight, then resumed by another pool: still the same bytes
        out2 = tmp_path / "out2.jsonl"
        with pytest.raises(KeyboardInterrupt):
            run_label_job(InterruptAfter(pool, 4), [str(inp)], out2, window=16, on_error="skip", progress=False,
                          log=quiet)
    with WorkerPool(str(model_dir), 2, quantize=quantize, recheck=recheck) as pool:
        run_label_job(pool, [str(inp)], out2, window=16, on_error="skip", resume=True, progress=False, log=quiet)
    assert out2.read_bytes() == ref.read_bytes()
    assert read(tmp_path / "out2.jsonl.rejects.jsonl") == read(tmp_path / "ref.jsonl.rejects.jsonl")


# ---------------------------------------------------------------------------- no stuck jobs


def test_staging_without_manifest_does_not_block_resume_or_rerun(model_dir, tmp_path):
    """A run killed before its first commit leaves OUTPUT.partial/ with no manifest."""
    inp = write_docs(tmp_path / "in.jsonl", 10)
    clf = Classifier.load(model_dir, device="cpu")
    for resume in (True, False):
        out = tmp_path / f"out{resume}.jsonl"
        staging = tmp_path / f"out{resume}.jsonl.partial"
        staging.mkdir()
        (staging / ".part-000001.jsonl.tmp").write_text("half a line")
        messages = []
        run_label_job(clf, [str(inp)], out, resume=resume, progress=False, log=messages.append)
        assert len(read(out)) > 0 and not staging.exists()
        assert any("committed nothing" in m for m in messages)


def test_bad_input_is_refused_before_anything_is_written(model_dir, tmp_path):
    inp = tmp_path / "in.csv"
    inp.write_text("id,body\na,Some text.\n")
    out = tmp_path / "out.jsonl"
    clf = Classifier.load(model_dir, device="cpu")
    with pytest.raises(InputError, match=rf"{inp}:1: no text column 'text'"):
        run_label_job(clf, [str(inp)], out, progress=False, log=quiet)
    assert not out.exists() and not (tmp_path / "out.jsonl.partial").exists()
    run_label_job(clf, [str(inp)], out, text_column="body", progress=False, log=quiet)  # the corrected command
    assert len(read(out)) == 1


def test_a_run_that_stops_on_a_bad_row_does_not_block_the_corrected_run(model_dir, tmp_path):
    inp = write_docs(tmp_path / "in.jsonl", 80, bad=70)
    lines = open(inp).read().splitlines()
    out = tmp_path / "out.jsonl"
    clf = Classifier.load(model_dir, device="cpu")
    with pytest.raises(InputError, match=rf"{inp}:71: malformed JSON"):
        run_label_job(clf, [str(inp)], out, window=8, progress=False, log=quiet)  # after several commits
    assert not (tmp_path / "out.jsonl.partial").exists()
    lines[70] = json.dumps({"id": "fixed", "text": "Fixed."})
    inp.write_text("\n".join(lines) + "\n")
    run_label_job(clf, [str(inp)], out, window=8, progress=False, log=quiet)
    assert "fixed" in {r["doc_id"] for r in read(out)}


def test_resume_refuses_a_different_model_of_the_same_name(model_dir, tmp_path):
    inp = write_docs(tmp_path / "in.jsonl", 40)
    out = tmp_path / "out.jsonl"
    with pytest.raises(KeyboardInterrupt):
        run_label_job(InterruptAfter(Classifier.load(model_dir, device="cpu"), 3), [str(inp)], out, window=8,
                      progress=False, log=quiet)
    meta = json.loads((model_dir / "framing.json").read_text())
    meta["temperature"] = 2.0  # same name, different labels' probabilities
    (model_dir / "framing.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"different job \(differs in \['model'\]\)"):
        run_label_job(Classifier.load(model_dir, device="cpu"), [str(inp)], out, window=8, resume=True,
                      progress=False, log=quiet)
    # int8 and fp32 are different jobs too
    plan = plan_label_job([str(inp)], tmp_path / "x.jsonl", {"name": "tiny", "precision": "int8", "sha256": "0"})
    assert plan.job["model"]["precision"] == "int8"


@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_exits_130_with_one_line_and_resume_completes(model_dir, tmp_path, workers):
    inp = write_docs(tmp_path / "in.jsonl", 3000)
    out = tmp_path / "out.jsonl"
    cmd = [sys.executable, "-m", "framing", "label", str(inp), "--model", str(model_dir), "--device", "cpu",
           "--window", "32", "--quiet", "-o", str(out), "--workers", str(workers)]
    # A shell's background job (nohup ... &, some CI runners) starts with SIGINT ignored, and Python
    # keeps an inherited SIG_IGN: give the child the default, as a terminal's foreground job has.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    manifest = tmp_path / "out.jsonl.partial" / "manifest.json"
    deadline = time.time() + 300
    while time.time() < deadline and not manifest.exists():
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C does: the whole process group, workers included
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "--resume" in err
    assert err.strip().splitlines()[-1] == "framing: interrupted"
    done = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert len({r["doc_id"] for r in read(out)}) == 3000


def test_inputs_are_checked_before_the_model_loads(model_dir, tmp_path, monkeypatch, capsys):
    def no_load(*a, **k):
        raise AssertionError("the model was loaded before the input was checked")

    monkeypatch.setattr(Classifier, "load", no_load)
    inp = tmp_path / "in.csv"
    inp.write_text("id,body\na,Text.\n")
    for extra in ([], ["-o", str(tmp_path / "o.jsonl")]):
        assert main(["label", str(inp), "--model", str(model_dir)] + extra) == 1
        assert f"{inp}:1: no text column 'text'" in capsys.readouterr().err
    assert main(["label", str(tmp_path / "missing.jsonl"), "--model", str(model_dir), "-o", str(tmp_path / "o.jsonl")]) == 1
    assert "missing.jsonl: no such file" in capsys.readouterr().err
    (tmp_path / "exists.jsonl").write_text("")
    assert main(["label", str(inp), "--text-column", "body", "--model", str(model_dir),
                 "-o", str(tmp_path / "exists.jsonl")]) == 1
    assert "exists; pass --force" in capsys.readouterr().err


# --------------------------------------------------------------------------- malformed CSV

UNCLOSED = 'id,source,text\na,s1,A fine row.\nb,s2,"Opens a quote and never closes it.\nc,s3,Row c.\nd,s4,Row d.\n'
STRAY = 'id,source,text\na,s1,A fine row.\nb,s2,"Opens a quote here.\nc,s3,Row c.\nd,s4,Row d ends with a stray quote"\ne,s5,Row e.\n'


@pytest.mark.parametrize("content, line", [(UNCLOSED, 3), (STRAY, 3)], ids=["unclosed", "stray"])
def test_malformed_csv_fails_with_file_line_or_is_rejected(model_dir, tmp_path, content, line):
    inp = tmp_path / "in.csv"
    inp.write_text(content)
    clf = Classifier.load(model_dir, device="cpu")
    with pytest.raises(InputError, match=rf"{inp}:{line}: "):
        run_label_job(clf, [str(inp)], tmp_path / "fail.jsonl", progress=False, log=quiet)
    out = tmp_path / "skip.jsonl"
    stats = run_label_job(clf, [str(inp)], out, on_error="skip", progress=False, log=quiet)
    assert stats.rejects == 1
    ids = {r["doc_id"] for r in read(out)}
    assert "a" in ids and "b" not in ids
    assert all("Row c" not in r["text"] for r in read(out))  # nothing swallowed into another row
    rejected = read(tmp_path / "skip.jsonl.rejects.jsonl")
    assert rejected[0]["where"] == f"{inp}:{line}" and "c,s3,Row c." in rejected[0]["raw"]  # kept, not lost


def test_legitimate_multiline_csv_fields_are_kept(tmp_path):
    inp = tmp_path / "in.csv"
    inp.write_text('id,source,text\na,s1,"First paragraph, with commas, here.\nSecond paragraph, also, commas."\n'
                   'b,s2,"He said ""no"" twice."\n')
    docs = list(iter_documents([str(inp)]))
    assert [d.doc_id for d in docs] == ["a", "b"]
    assert "Second paragraph" in docs[0].text and docs[1].text == 'He said "no" twice.'


def test_wrong_field_count_names_the_line(tmp_path):
    inp = tmp_path / "in.csv"
    inp.write_text("id,source,text\na,s1,Fine.\nb,Only two\n")
    with pytest.raises(InputError, match=rf"{inp}:3: row has 2 fields, header has 3"):
        list(iter_documents([str(inp)]))


# ------------------------------------------------------------------------------- parquet schema


def test_parquet_schema_is_fixed_by_the_first_part(model_dir, tmp_path):
    import pyarrow.parquet as pq

    inp = tmp_path / "in.jsonl"
    with open(inp, "w") as f:
        for i in range(30):
            f.write(json.dumps({"id": f"d{i}", "text": "A sentence here.", "year": 2000 + i if i < 20 else "n/a",
                                "note": None if i < 10 else "x"}) + "\n")
    clf = Classifier.load(model_dir, device="cpu")
    out = tmp_path / "out.parquet"
    with pytest.raises(ValueError, match=r"column 'year' is int64 .* record 'd20' sentence 0 has 'n/a' \(str\)"):
        run_label_job(clf, [str(inp)], out, window=5, progress=False, log=quiet)
    assert not out.exists() and not (tmp_path / "out.parquet.partial").exists()
    # a column empty in the first part is typed string, and later strings fit it
    rows = [json.loads(l) for l in open(inp)][:20]
    inp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    run_label_job(clf, [str(inp)], out, window=5, progress=False, log=quiet)
    table = pq.read_table(out)
    assert str(table.schema.field("note").type) == "string" and table.column("note").to_pylist()[-1] == "x"


# ------------------------------------------------------------------------------------ CLI


def test_output_options_without_output_are_errors(model_dir, tmp_path, capsys):
    inp = write_docs(tmp_path / "in.jsonl", 2)
    for flag in (["--format", "csv"], ["--resume"]):
        assert main(["label", str(inp), "--model", str(model_dir)] + flag) == 1
        assert f"{flag[0]} needs -o OUTPUT" in capsys.readouterr().err


def test_report_reads_an_output_without_extension(model_dir, tmp_path):
    inp = write_docs(tmp_path / "in.jsonl", 4)
    for fmt in ("jsonl", "csv", "parquet"):
        out = tmp_path / f"labels_{fmt}"
        assert main(["label", str(inp), "--model", str(model_dir), "--format", fmt, "-o", str(out), "--quiet"]) == 0
        assert main(["report", str(out), "-o", str(tmp_path / f"{fmt}.html")]) == 0


def test_table_mode_summary_shows_truncation_and_load_time(model_dir, tmp_path, capsys):
    inp = tmp_path / "in.jsonl"
    inp.write_text(json.dumps({"id": "x", "text": " ".join(["word"] * 200)}) + "\n")
    assert main(["label", str(inp), "--model", str(model_dir), "--unit", "sentence"]) == 0
    err = capsys.readouterr().err
    assert "truncated to the model's length limit: 1" in err and "model load" in err


def test_every_option_has_help_that_states_its_default():
    parser = build_parser()
    stack = [("framing", parser)]
    seen = 0
    while stack:
        name, p = stack.pop()
        for action in p._actions:
            if hasattr(action, "choices") and isinstance(action.choices, dict):  # subcommands
                stack.extend((f"{name} {k}", v) for k, v in action.choices.items())
                continue
            if not action.option_strings or action.dest in ("help", "version"):
                continue
            seen += 1
            assert action.help, f"{name} {action.option_strings[0]} has no help"
            text = p._get_formatter()._expand_help(action)
            if action.default == argparse.SUPPRESS or isinstance(action.default, bool):
                continue  # flags: off unless given
            if action.default is None or isinstance(action.default, (int, float, str)):
                assert "default" in text or action.required, f"{name} {action.option_strings[0]}: {text!r}"
    assert seen > 30


def test_internal_errors_are_one_line_and_debug_shows_the_traceback(monkeypatch, capsys, tmp_path):
    import framing.report

    def boom(*a, **k):
        raise KeyError("internal")

    monkeypatch.setattr(framing.report, "build_report", boom)
    args = ["report", str(tmp_path / "x.jsonl"), "-o", str(tmp_path / "r.html")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error: KeyError" in err and "--debug" in err
    with pytest.raises(KeyError):
        main(args + ["--debug"])
    with pytest.raises(KeyError):
        main(["--debug"] + args)


def test_user_errors_of_any_type_are_one_line(tmp_path, capsys):
    bad = tmp_path / "x.parquet"
    bad.write_bytes(b"not parquet at all")
    assert main(["report", str(bad), "-o", str(tmp_path / "r.html")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"framing: error: {bad}") and err.count("\n") == 1


def test_kill_between_output_and_cleanup_resumes_to_done(model_dir, tmp_path, monkeypatch):
    """A kill after the output is in place but before the staging folder is removed."""
    import shutil

    import framing.batch

    inp = write_docs(tmp_path / "in.jsonl", 30, bad=5)
    out = tmp_path / "out.jsonl"
    clf = Classifier.load(model_dir, device="cpu")

    def killed(path, *a, **k):
        raise KeyboardInterrupt

    import types

    monkeypatch.setattr(framing.batch, "shutil", types.SimpleNamespace(rmtree=killed))
    with pytest.raises(KeyboardInterrupt):
        run_label_job(clf, [str(inp)], out, window=8, on_error="skip", progress=False, log=quiet)
    monkeypatch.setattr(framing.batch, "shutil", shutil)
    assert out.exists() and (tmp_path / "out.jsonl.partial").exists()
    ref = out.read_bytes()
    assert len(read(tmp_path / "out.jsonl.rejects.jsonl")) == 1
    stats = run_label_job(clf, [str(inp)], out, window=8, on_error="skip", resume=True, progress=False, log=quiet)
    assert not (tmp_path / "out.jsonl.partial").exists() and out.read_bytes() == ref and stats.rejects == 1
