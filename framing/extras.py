"""Optional dependencies: which extra of ``framing`` brings them, and a clear error when it is missing.

Labelling needs only the core install (``pip install framing``). Training needs ``framing[train]``
(datasets, peft), plots in ``framing report`` and ``framing eval`` need ``framing[report]``
(matplotlib), the cluster engine needs ``framing[ray]``, ``framing audit`` needs ``framing[audit]`` (cleanlab).
"""

from __future__ import annotations

import importlib

EXTRAS = {"datasets": "train", "peft": "train", "matplotlib": "report", "ray": "ray", "cleanlab": "audit"}


def need(module: str, purpose: str):
    """Import ``module`` or raise ModuleNotFoundError naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        top = module.split(".")[0]
        extra = EXTRAS.get(top)
        how = f"pip install 'framing[{extra}]'" if extra else f"pip install {top}"
        raise ModuleNotFoundError(f"{purpose} needs {top}, which is not installed: {how}") from e
