"""vocalfront: designed and learnable filter-bank front-ends, and a singing voice detector."""

__version__ = "0.1.0"
