"""Where framing finds its shipped models: one module owns the paths.

Shipped models are resolved relative to the installed package, never from the working
directory: in a wheel they are package data (``framing/models/<name>``); in a source checkout
they are the repository's ``models/<name>`` beside the package.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

DEFAULT_MODEL = "accurate"
"""The model ``Classifier.load()`` and ``framing label`` use when none is named."""

_PACKAGE = Path(__file__).resolve().parent

_RECORDS = {"README.md", "metrics.json", "provenance.json", "training_config.json", "eval"}
"""Files in a model folder that describe the model rather than define it."""


def models_dir() -> Path:
    """The folder holding the shipped models (package data in a wheel, ``models/`` in a checkout)."""
    packaged = _PACKAGE / "models"
    return packaged if packaged.is_dir() else _PACKAGE.parent / "models"


def shipped_models() -> list[str]:
    """Names of the shipped models."""
    d = models_dir()
    return sorted(p.name for p in d.iterdir() if (p / "framing.json").is_file()) if d.is_dir() else []


def resolve_model(ref: str | Path | None) -> Path:
    """A model folder from a shipped name (``accurate``, ``fast``), ``None`` (the default) or a path."""
    if ref is None or ref == "":
        ref = DEFAULT_MODEL
    if isinstance(ref, str) and "/" not in ref and "\\" not in ref and (models_dir() / ref / "framing.json").is_file():
        return models_dir() / ref
    path = Path(ref)
    if path.is_dir():
        return path
    if isinstance(ref, str) and "/" not in ref and not path.exists():
        raise FileNotFoundError(f"model {ref!r}: not a shipped model ({', '.join(shipped_models()) or 'none found'}) "
                                "and not a folder")
    raise FileNotFoundError(f"model directory {path} does not exist")


def model_content_hash(path: str | Path) -> str:
    """SHA-256 over the files that define a model (names and bytes), records such as metrics excluded."""
    path = Path(path)
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file() and p.relative_to(path).parts[0] not in _RECORDS):
        h.update(f.relative_to(path).as_posix().encode() + b"\0")
        with open(f, "rb") as fh:
            while block := fh.read(1 << 22):
                h.update(block)
    return h.hexdigest()


# ------------------------------------------------------------------ the project's data (checkout only)
#
# Labelling needs nothing but the package. Training and evaluation read the corpus (``seeds/``)
# and the real-text dev set (``../shared/data/real_dev.jsonl``), which exist in a source checkout;
# these functions are the one place that knows that layout, and environment variables override it.


def checkout_root() -> Path | None:
    """The source checkout framing runs from, or None when it is installed (e.g. from a wheel)."""
    root = _PACKAGE.parent
    return root if (root / "pyproject.toml").is_file() and (root / "seeds").is_dir() else None


def project_path(path: str | Path) -> Path:
    """A path from a config: absolute as given; relative to the checkout (else the working directory)."""
    path = Path(path)
    return path if path.is_absolute() else (checkout_root() or Path.cwd()) / path


def seeds_dir() -> Path:
    """The corpus folder: ``$FRAMING_SEEDS``, else ``./seeds``, else the checkout's ``seeds/``."""
    import os

    if os.environ.get("FRAMING_SEEDS"):
        return Path(os.environ["FRAMING_SEEDS"])
    here = Path.cwd() / "seeds"
    if here.is_dir() or checkout_root() is None:
        return here
    return checkout_root() / "seeds"


def real_dev_path() -> Path:
    """The real-text dev set: ``$FRAMING_REAL_DEV``, else ``../shared/data/real_dev.jsonl`` beside the checkout."""
    import os

    if os.environ.get("FRAMING_REAL_DEV"):
        return Path(os.environ["FRAMING_REAL_DEV"])
    return project_path("../shared/data/real_dev.jsonl")
