"""The on-device side: photo loading, quality checks, ONNX inference, verdicts.

Imports no torch, torchvision or albumentations, ever: the base install is
onnxruntime, numpy and pillow, which is what a handheld carries.
"""
