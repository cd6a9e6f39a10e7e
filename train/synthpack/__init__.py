"""SynthPack: the project's synthetic packaging benchmark.

Products (design.py) are printed as physical items with genuine tolerances
(render.py); counterfeits carry one of eight defect families (defects.py); each item
is photographed as on a handheld (capture.py); generate.py plans splits by item and
writes an ImageFolder tree plus manifest.csv.
"""
from .defects import FAMILIES, SEVERITY

__all__ = ["FAMILIES", "SEVERITY"]
