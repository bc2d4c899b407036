"""framing: label sentences by their role in a contested claim.

Labels: ``allegation``, ``denial``, ``justification``, ``other`` (see :data:`framing.LABELS`).
"""

from framing.labels import LABELS
from framing.model import Classifier

__version__ = "0.1.0"

__all__ = ["LABELS", "Classifier", "__version__"]
