"""The backbones `genuine train --backbone` offers, by name: torch-free, so the CLI lists them without importing
torch (train/backbones.py builds them)."""
LITE = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
TORCHVISION = ("mobilenet_v3_large", "mobilenet_v3_small", "efficientnet_b0", "resnet50")
NAMES = LITE + TORCHVISION
DEFAULT = "efficientnet_lite0"   # made for phones; ImageNet weights from its pip package
