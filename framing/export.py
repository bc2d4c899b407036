"""Export a model as a standalone Hugging Face directory that needs no framing code."""

from __future__ import annotations

import copy
from pathlib import Path

from framing.labels import ID2LABEL, LABEL2ID
from framing.model import Classifier, TransformerBackend


def export(model: str | Path | Classifier | None, output_dir: str | Path) -> Path:
    """Write merged weights, tokenizer and ``id2label`` to ``output_dir``.

    ``transformers.pipeline("text-classification", model=output_dir)`` loads the result. The
    calibration temperature is folded into the classification layer (weights and bias divided
    by T), so the exported probabilities equal ``Classifier.predict_proba``.

    Args:
        model: A model directory, a loaded :class:`Classifier`, or ``None`` for the shipped model.
        output_dir: The folder to write (created if needed).
    """
    import torch

    clf = model if isinstance(model, Classifier) else Classifier.load(model, device="cpu")
    if clf.backend.kind == "pooled":
        raise ValueError(f"{clf.name!r} is a 'pooled' model (mean pooling + linear head), which has no standard "
                         "Hugging Face sequence-classification class; export supports 'transformer' models "
                         "such as models/minilm-lora")
    if not isinstance(clf.backend, TransformerBackend):
        raise ValueError(f"only transformer models can be exported; {clf.name!r} is a {clf.backend.kind!r} model")
    # Work on a copy: the caller's classifier keeps its own (unscaled) head.
    hf = copy.deepcopy(clf.backend.model)
    if hasattr(hf, "merge_and_unload"):  # a LoRA model straight from training: merge the adapter
        hf = hf.merge_and_unload()
    hf = hf.to("cpu").eval()
    head = getattr(hf, "classifier", None)
    if clf.temperature != 1.0:
        if not isinstance(head, torch.nn.Linear):
            raise ValueError("cannot fold the temperature into this architecture's head (expected a Linear classifier)")
        with torch.no_grad():
            head.weight /= clf.temperature
            head.bias /= clf.temperature
    hf.config.id2label = dict(ID2LABEL)
    hf.config.label2id = dict(LABEL2ID)
    hf.config.problem_type = "single_label_classification"
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    hf.save_pretrained(output_dir, safe_serialization=True)
    clf.backend.tokenizer.save_pretrained(output_dir)
    return output_dir
