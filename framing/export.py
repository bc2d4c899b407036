"""Export a model as a standalone Hugging Face directory that needs no framing code."""

from __future__ import annotations

import copy
from pathlib import Path

from framing.labels import ID2LABEL, LABEL2ID
from framing.model import Classifier, TransformerBackend


def export(model: str | Path | Classifier | None, output_dir: str | Path) -> Path:
    """Write merged weights, tokenizer and ``id2label`` to ``output_dir``.

    For a ``transformer`` model, ``transformers.pipeline("text-classification", model=output_dir)``
    loads the result. A ``pooled`` model (``accurate``, ``fast``: mean pooling + a linear head) has
    no standard sequence-classification class, so it is exported as the merged encoder, which
    ``pipeline("feature-extraction")`` loads, plus ``head.safetensors`` and ``head.json``: mean-pool
    the token vectors over the attention mask and apply the head (see the folder's README.md). The
    calibration temperature is folded into the classification layer (weights and bias divided
    by T), so the exported probabilities equal ``Classifier.predict_proba``.

    Args:
        model: A model directory, a loaded :class:`Classifier`, or ``None`` for the shipped model.
        output_dir: The folder to write (created if needed).
    """
    import torch

    clf = model if isinstance(model, Classifier) else Classifier.load(model, device="cpu")
    if clf.backend.kind == "pooled":
        return _export_pooled(clf, Path(output_dir))
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


POOLED_README = """# {name}, exported by `framing export`

The merged encoder ({encoder}, LoRA folded in) loads with plain transformers; the sentence
classifier on top is mean pooling over the tokens and the linear head in `head.safetensors`
(temperature already folded in), labels in `head.json`:

```python
import numpy as np
from safetensors.numpy import load_file
from transformers import pipeline

fe = pipeline("feature-extraction", model="{folder}")
head = load_file("{folder}/head.safetensors")
tokens = np.asarray(fe("The ministry rejected the report.", truncation=True, max_length={max_length})[0])
logits = tokens.mean(0) @ head["weight"].T + head["bias"]   # one sentence: no padding to mask
labels = {labels}
print(labels[int(logits.argmax())])
```
"""


def _export_pooled(clf: Classifier, output_dir: Path) -> Path:
    import json

    from safetensors.numpy import save_file

    from framing.labels import LABELS

    model = clf.backend.model
    if getattr(model, "pooling", "mean") != "mean":
        raise ValueError(f"{clf.name!r} pools with {model.pooling!r}; export supports mean pooling")
    output_dir.mkdir(parents=True, exist_ok=True)
    encoder = copy.deepcopy(model.encoder).to("cpu").eval()
    encoder.save_pretrained(output_dir, safe_serialization=True)
    clf.backend.tokenizer.save_pretrained(output_dir)
    weight = model.head.weight.detach().cpu().numpy() / clf.temperature
    bias = model.head.bias.detach().cpu().numpy() / clf.temperature
    save_file({"weight": weight.astype("float32"), "bias": bias.astype("float32")}, str(output_dir / "head.safetensors"))
    (output_dir / "head.json").write_text(json.dumps({"pooling": "mean", "labels": list(LABELS),
                                                      "max_length": clf.backend.max_length}, indent=1) + "\n")
    (output_dir / "README.md").write_text(POOLED_README.format(
        name=clf.name, encoder=clf.backend.meta.get("encoder"), folder=output_dir, labels=list(LABELS),
        max_length=clf.backend.max_length))
    return output_dir
