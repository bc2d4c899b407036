"""Shared fixtures: a tiny randomly initialised BERT built from a config (no weights are loaded)."""

import copy
import string

import pytest

from framing.labels import ID2LABEL, LABEL2ID

# 4 labels x 2 sentences, as in spaCy's textcat overfitting test.
TRAIN = [
    ("Soldiers burned the village and shot fleeing residents.", "allegation"),
    ("Workers said their passports were confiscated by the company.", "allegation"),
    ("The ministry called the report a baseless fabrication.", "denial"),
    ("There is no forced labour in our factories whatsoever.", "denial"),
    ("The programme lifted three million families out of poverty.", "justification"),
    ("The detention is lawful under the national security act.", "justification"),
    ("The committee will meet again in Geneva next March.", "other"),
    ("Reporters asked the spokesperson about the trade talks.", "other"),
]


def _vocab():
    words = sorted({w.strip(".,").lower() for text, _ in TRAIN for w in text.split()})
    return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words + list(string.ascii_lowercase) + list(".,'\"")


@pytest.fixture(scope="session")
def _tiny_model_session():
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    vocab = {token: i for i, token in enumerate(_vocab())}
    tokenizer = BertTokenizerFast(vocab=vocab, do_lower_case=True)
    config = BertConfig(vocab_size=len(_vocab()), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, num_labels=4,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                        id2label=dict(ID2LABEL), label2id=dict(LABEL2ID))
    torch.manual_seed(0)
    return BertForSequenceClassification(config), tokenizer


@pytest.fixture
def tiny_model(_tiny_model_session):
    """A fresh copy of the tiny random model and its tokenizer for each test."""
    model, tokenizer = _tiny_model_session
    return copy.deepcopy(model), tokenizer


@pytest.fixture
def train_data():
    return list(TRAIN)
