"""genuine: tell genuine goods from counterfeits by their photos.

The package holds the command line (`genuine ...`); the library lives in
`train/` (torch side) and `infer/` (on-device side, no torch).
"""
try:
    from importlib.metadata import version as _version

    __version__ = _version("genuine")
except Exception:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
