"""No sentence of ../shared/data/real_dev.jsonl may be copied into the repository."""

import json
import re
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


STOCK_NAMES = ("the office of the un high commissioner for human rights",
               "the office of the united nations high commissioner for human rights")
"""Official names of bodies, eight words or longer: shared with real_dev because they are names.
Runs of words inside one do not count as shared wording."""


def _word_runs(text: str, n: int) -> set[str]:
    words = re.findall(r"\w+", text.lower())
    return {" ".join(words[i:i + n]) for i in range(len(words) - n + 1)}


@pytest.mark.skipif(not REAL_DEV.exists(), reason=f"{REAL_DEV} not found: nothing to compare against")
def test_no_close_paraphrase_of_real_dev_in_repo():
    """Written corpus sentences must not lean on real_dev wording: no run of 8 words in common.

    Eight words is long enough that stock phrases ("the Uyghur Forced Labor Prevention Act") do not
    trip it, and short enough to catch a sentence rewritten from a real_dev one.
    """
    runs = {}
    for line in REAL_DEV.open(encoding="utf-8"):
        if line.strip():
            rec = json.loads(line)
            runs.update({r: rec["id"] for r in _word_runs(rec["text"], 8)
                         if not any(f" {r} " in f" {name} " for name in STOCK_NAMES)})
    leaks = []
    for f in repo_files():
        if f.suffix not in TEXT_SUFFIXES or not f.is_file():
            continue
        for n, line in enumerate(f.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            leaks += [f"{f.relative_to(ROOT)}:{n}: {r!r} (real_dev {runs[r]})" for r in _word_runs(line, 8) & runs.keys()]
    assert not leaks, "wording shared with real_dev:\n" + "\n".join(leaks)
