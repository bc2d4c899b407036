"""The Ray engine gives the local engine's records (a local Ray instance with 2 CPUs)."""

import json

import pytest

from framing import Classifier
from framing.batch import run_label_job
from framing.model import TransformerBackend

ray = pytest.importorskip("ray", reason="the cluster engine needs `pip install 'framing[ray]'`")

SENTENCES = ["Soldiers burned the village, witnesses said.", "The ministry called the report a fabrication.",
             "There is no forced labour in our factories.", "The committee will meet again in March."]


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
    for x, y in zip(a, b):
        assert {k: x[k] for k in x if k not in ("probs", "confidence")} == {k: y[k] for k in y if k not in ("probs", "confidence")}
        assert y["confidence"] == pytest.approx(x["confidence"], abs=2e-4)
        assert y["probs"] == pytest.approx(x["probs"], abs=2e-4)
    assert stats.documents == local_stats.documents and stats.empty_documents == 1

    # Parquet output written by the workers themselves (OUTPUT without extension: a folder)
    folder = tmp_path / "ray_parquet"
    stats2 = run_ray_job(str(model_dir), [str(inp)], folder, num_cpus=2, concurrency=1, batch_size=16)
    assert stats2.sentences == len(a) and list(folder.glob("*.parquet"))
