"""genuine: tell genuine goods from counterfeits by their photos.

    from genuine import Inspector
    r = Inspector("model.onnx", templates="refs.db").inspect("IMG_0001.jpg")
    print(r.verdict, r.authenticity, r.reason)

The package holds the command line (`genuine ...`), the on-device side `genuine.infer` (source folder `infer/`,
no torch) and the torch side `genuine.train` (source folder `train/`, the `train` extra).
"""
try:
    from importlib.metadata import version as _version

    __version__ = _version("genuine")
except Exception:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

# The main API, importable from the package as timm and ultralytics do; loaded on first use, so that the CLI's
# `--help` does not pay for onnxruntime and OpenCV.
_API = {"Inspector": "genuine.infer.inspector", "Result": "genuine.infer.inspector",
        "OnnxModel": "genuine.infer.runtime", "ModelError": "genuine.infer.runtime",
        "load_photo": "genuine.infer.photo", "PhotoError": "genuine.infer.photo",
        "load_templates": "genuine.infer.templates"}
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'genuine' has no attribute {name!r}")
