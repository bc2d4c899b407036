"""The label schema, defined once and in order.

Every model artifact stores ``id2label``/``label2id`` built from :data:`LABELS`; loading an
artifact whose labels differ from this tuple is an error (see :func:`check_labels`).
"""

from __future__ import annotations

LABELS: tuple[str, ...] = ("allegation", "denial", "justification", "other")
"""The four labels, in the order of model outputs and probability columns."""

LABEL2ID: dict[str, int] = {label: i for i, label in enumerate(LABELS)}
ID2LABEL: dict[int, str] = dict(enumerate(LABELS))

REGISTERS: tuple[str, ...] = (
    "wire",
    "press-conference",
    "embassy-statement",
    "white-paper",
    "ngo-report",
    "company-statement",
    "parliamentary-debate",
    "op-ed",
)
"""Text registers used in the corpus (the genre a sentence comes from)."""

ORIGINS: tuple[str, ...] = ("seed", "written", "annotated")
"""Where a corpus sentence comes from: the seed document, written by the team, or real text
labelled by a person with ``framing annotate``."""


def check_labels(labels, *, source: str) -> None:
    """Raise ``ValueError`` if ``labels`` (in order) differ from :data:`LABELS`.

    Args:
        labels: The labels an artifact declares, in id order.
        source: What declared them (a path), for the message.
    """
    labels = tuple(labels)
    if labels != LABELS:
        raise ValueError(
            f"{source} declares labels {list(labels)}, but framing expects {list(LABELS)} "
            "(same names, same order). Retrain the model with this version of framing."
        )
