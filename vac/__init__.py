"""vac: a Python 3 implementation of the Vac vacuum-model VM factory."""

__version__ = "04.00.00"
