"""The Ray engine gives the local engine's records (a local Ray instance with 2 CPUs)."""

import json

import pytest

from framing import Classifier
from framing.batch import run_label_job
from framing.model import TransformerBackend

ray = pytest.importorskip("ray", reason="the cluster engine needs `pip install 'framing[ray]'`")

SENTENCES = ["Soldiers burned the village, witnesses said.", "The ministry called the report a fabrication.",
             "There is no forced labour in our factories.", "The committee will meet again in March."]


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    """One local Ray (2 CPUs) for the module: run_ray_job uses a running Ray and leaves it running."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture
def model_dir(tiny_model, tmp_path):
    model, tok = tiny_model
    return Classifier(TransformerBackend(model.eval(), tok), name="tiny").save(tmp_path / "model")


def test_ray_engine_output_equals_local_engine(model_dir, tmp_path):
    from framing.ray_engine import run_ray_job

    inp = tmp_path / "in.jsonl"
    with open(inp, "w") as f:
        for i in range(40):
            text = " ".join(SENTENCES[(i + k) % 4] for k in range(1 + i % 3))
            f.write(json.dumps({"id": f"d{i}", "text": text, "source": f"s{i % 2}"}) + "\n")
        f.write(json.dumps({"id": "empty", "text": "", "source": "s0"}) + "\n")
    local = tmp_path / "local.jsonl"
    clf = Classifier.load(model_dir, device="cpu")
    local_stats = run_label_job(clf, [str(inp)], local, progress=False, log=lambda *_: None)
    out = tmp_path / "ray.jsonl"
    stats = run_ray_job(str(model_dir), [str(inp)], out, num_cpus=2, concurrency=2, batch_size=8)  # capped to 1 worker: 1 CPU stays for reading
    a = [json.loads(l) for l in open(local)]
    b = [json.loads(l) for l in open(out)]
    assert len(a) == len(b) == local_stats.sentences == stats.sentences
    assert a == b  # whole records, field by field: batching does not change a sentence's numbers
    assert stats.documents == local_stats.documents and stats.empty_documents == 1

    # Parquet output written by the workers themselves (OUTPUT without extension: a folder):
    # the same records, with no internal columns and no rows for empty documents
    import pyarrow.parquet as pq

    folder = tmp_path / "ray_parquet"
    stats2 = run_ray_job(str(model_dir), [str(inp)], folder, num_cpus=2, concurrency=1, batch_size=16)
    rows = pq.read_table(folder).to_pylist()
    assert stats2.sentences == len(a) and stats2.empty_documents == 1
    assert rows == a


def test_ray_engine_txt_ids_and_unsupported_flags(model_dir, tmp_path):
    from framing.cli import main
    from framing.ray_engine import run_ray_job

    corpus = tmp_path / "corpus"
    (corpus / "sub").mkdir(parents=True)
    (corpus / "sub" / "a.txt").write_text(" ".join(SENTENCES[:2]))
    (corpus / "b.txt").write_text(SENTENCES[2])
    local = tmp_path / "local.jsonl"
    run_label_job(Classifier.load(model_dir, device="cpu"), [str(corpus)], local, progress=False, log=lambda *_: None)
    out = tmp_path / "ray.jsonl"
    run_ray_job(str(model_dir), [str(corpus)], out, num_cpus=2, concurrency=1, batch_size=8)
    a = [json.loads(l) for l in open(local)]
    assert {r["doc_id"] for r in a} == {"sub/a", "b"}
    assert sorted(a, key=lambda r: (r["doc_id"], r["sent_id"])) == \
        sorted((json.loads(l) for l in open(out)), key=lambda r: (r["doc_id"], r["sent_id"]))
    for flag in (["--resume"], ["--on-error", "skip"], ["--device", "cpu"], ["--window", "64"]):
        assert main(["label", str(corpus), "--engine", "ray", "--model", str(model_dir), "-o",
                     str(tmp_path / "x.jsonl")] + flag) == 1
