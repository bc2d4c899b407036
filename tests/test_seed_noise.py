"""eval/seed_noise.py: mean and spread of a recipe's macro-F1 over seeds, and the weakest class."""

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "eval" / "seed_noise.py"


def _script():
    spec = importlib.util.spec_from_file_location("seed_noise", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run(folder: Path, seed: int, f1s: dict, **config) -> str:
    folder.mkdir()
    summary = {split: {"macro_f1": sum(per) / len(per), **{f"f1_{c}": v for c, v in zip("abcd", per)}}
               for split, per in f1s.items()}
    (folder / "metrics.json").write_text(json.dumps({"summary": summary}))
    (folder / "training_config.json").write_text(json.dumps({"config": {"seed": seed, "epochs": 3, **config}}))
    return str(folder)


SPLITS = ["dev", "test", "cross_domain", "world_heldout", "real_dev"]


def test_mean_sd_and_weakest_class_over_seeds(tmp_path, capsys):
    a = _run(tmp_path / "a", 13, {s: [0.9, 0.8, 0.7, 0.6] for s in SPLITS})
    b = _run(tmp_path / "b", 1, {s: [0.9, 0.8, 0.9, 0.8] for s in SPLITS})
    out = tmp_path / "noise.json"
    assert _script().main([a, b, "-o", str(out), "--note", "Seed 13 predates X."]) == 0
    got = json.loads(out.read_text())
    assert got["seeds"] == [13, 1]
    cd = got["macro_f1"]["cross_domain"]
    assert cd["values"] == pytest.approx([0.75, 0.85]) and cd["mean"] == pytest.approx(0.80)
    assert cd["sd"] == pytest.approx(0.1 / 2 ** 0.5)
    assert got["weakest_class_f1"]["real_dev"]["values"] == pytest.approx([0.6, 0.8])
    text = capsys.readouterr().out
    assert "| weakest class F1, held-out domains" in text and text.rstrip().endswith("Seed 13 predates X.")


def test_runs_whose_configs_differ_beyond_the_seed_are_refused(tmp_path):
    a = _run(tmp_path / "a", 13, {"dev": [0.9] * 4})
    b = _run(tmp_path / "b", 1, {"dev": [0.9] * 4}, epochs=4)
    with pytest.raises(SystemExit, match="config differs .* in \\['epochs'\\], not only in the seed"):
        _script().main([a, b])
