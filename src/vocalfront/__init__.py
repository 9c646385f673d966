"""vocalfront: designed and learnable filter-bank front-ends, and a singing voice detector."""

__version__ = "0.2.0"

from .detect import Detection, detect

__all__ = ["Detection", "__version__", "detect"]
