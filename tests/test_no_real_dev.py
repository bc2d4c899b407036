"""No sentence of ../shared/data/real_dev.jsonl may be copied into the repository."""

import json
import subprocess
from pathlib import Path

import pytest

from framing.data import normalize_text

ROOT = Path(__file__).resolve().parent.parent
REAL_DEV = ROOT.parent / "shared" / "data" / "real_dev.jsonl"
TEXT_SUFFIXES = {".jsonl", ".json", ".csv", ".tsv", ".txt", ".md", ".py", ".toml", ".html"}


def repo_files():
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:  # not a git checkout (e.g. an sdist): scan the tree
        return [p for p in ROOT.rglob("*") if p.is_file() and ".venv" not in p.parts]
    return [ROOT / p for p in out.stdout.split("\0") if p]


@pytest.mark.skipif(not REAL_DEV.exists(), reason=f"{REAL_DEV} not found: nothing to compare against")
def test_no_real_dev_sentence_in_repo():
    real = {normalize_text(json.loads(line)["text"]) for line in REAL_DEV.open(encoding="utf-8") if line.strip()}
    real = {r for r in real if len(r) > 30}
    assert real, f"{REAL_DEV} holds no sentences"
    leaks = []
    for f in repo_files():
        if f.suffix not in TEXT_SUFFIXES or not f.is_file():
            continue
        body = normalize_text(f.read_text(encoding="utf-8", errors="replace"))
        leaks += [f"{f.relative_to(ROOT)}: {r[:60]}" for r in real if r in body]
    assert not leaks, "real_dev sentences copied into the repo:\n" + "\n".join(leaks)
