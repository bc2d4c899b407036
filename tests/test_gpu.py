"""CUDA inference (fp16, token-bounded padded batches); skipped cleanly on machines without a GPU."""

import numpy as np
import pytest
import torch

from framing import Classifier
from framing.model import TransformerBackend

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

TEXTS = ["Soldiers burned the village, witnesses said.", "The ministry called the report a fabrication.",
         "There is no forced labour in our factories.", "The committee will meet again in March.",
         "The programme lifted families out of poverty."] * 20


def test_fp16_on_cuda_agrees_with_fp32_on_cpu(tiny_model, tmp_path):
    model, tok = tiny_model
    path = Classifier(TransformerBackend(model.eval(), tok), name="tiny").save(tmp_path / "m")
    cpu = Classifier.load(path, device="cpu")
    gpu = Classifier.load(path, device="cuda")
    assert gpu.precision == "fp16" and next(gpu.backend.model.parameters()).dtype == torch.float16
    np.testing.assert_allclose(gpu.predict_proba(TEXTS), cpu.predict_proba(TEXTS), atol=2e-2)
    # large token-bounded batches: 100 short sentences go in one forward pass
    seen = []
    hook = gpu.backend.model.register_forward_pre_hook(lambda m, a, k: seen.append(k["input_ids"].shape[0]),
                                                        with_kwargs=True)
    gpu.predict_proba(TEXTS)
    hook.remove()
    assert max(seen) == 64  # batch_size bounds it, not the token budget (8,192 on CUDA)
