"""The training side: data (SynthPack, layouts, checks, splits), training, evaluation, export.

Modules that need torch import it themselves, so `genuine synth` and the data
tools stay usable, and fast to start, without it.
"""
