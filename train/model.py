"""The network: a torchvision backbone with authenticity, embedding, heatmap and product heads.

Input is what the ONNX file will take: uint8 RGB (N, H, W, 3); normalisation happens
inside, so export and inspector cannot drift from training.

    net = GenuineNet("mobilenet_v3_large", n_products=8)
    out = net(x_uint8)   # dict: logit (N,), heatmap (N,h,w), embedding (N,128), product_logits (N,P)

Pretrained ImageNet weights come from a local file or the torch cache, never the network.
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from infer.preprocess import MEAN, STD

BACKBONES = ("mobilenet_v3_large", "mobilenet_v3_small", "efficientnet_b0", "resnet50")
EMBED_DIM = 128


class WeightsError(RuntimeError):
    """Pretrained weights were asked for and are not on this machine."""


def _features(name: str) -> tuple[nn.Module, int]:
    net = torchvision.models.get_model(name, weights=None)  # weights=None never touches the network
    if name.startswith("resnet"):
        body = nn.Sequential(*list(net.children())[:-2])
        return body, net.fc.in_features
    return net.features, net.features[-1].out_channels


def imagenet_weights_file(name: str) -> Path:
    """Where torchvision's cache keeps this backbone's ImageNet weights ($TORCH_HOME/hub/checkpoints)."""
    url = torchvision.models.get_model_weights(name).DEFAULT.url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def resolve_weights(name: str, weights: str) -> dict:
    """Decide which pretrained weights to use: {'source', 'path', 'sha256', 'url'}; never downloads."""
    if weights == "none":
        return {"source": "none"}
    if weights in ("auto", "imagenet"):
        f = imagenet_weights_file(name)
        if f.is_file():
            return {"source": "imagenet", "path": str(f), "sha256": file_sha256(f)}
        url = torchvision.models.get_model_weights(name).DEFAULT.url
        if weights == "imagenet":
            raise WeightsError(
                f"ImageNet weights for {name} are not on this machine and genuine never downloads.\n"
                f"  expected file: {f.name}\n  in folder:     {f.parent}  (set TORCH_HOME to use another cache)\n"
                f"  get it on a connected machine from {url}, copy it there, or pass --weights PATH "
                f"or --weights none")
        print(f"WARNING: no ImageNet weights for {name} at {f}; training FROM SCRATCH (slower, needs more "
              f"data). Put {f.name} in {f.parent} or pass --weights PATH to start from pretrained weights.",
              file=sys.stderr)
        return {"source": "none", "wanted": str(f)}
    f = Path(weights)
    if not f.is_file():
        raise WeightsError(f"--weights {weights}: no such file (use auto, imagenet, none or a path)")
    return {"source": "file", "path": str(f), "sha256": file_sha256(f)}


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class GenuineNet(nn.Module):
    def __init__(self, backbone: str = "mobilenet_v3_large", n_products: int = 1, topk_frac: float = 0.125):
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {backbone!r}; choose from {', '.join(BACKBONES)}")
        self.backbone_name = backbone
        self.features, c = _features(backbone)
        for m in self.features.modules():
            if isinstance(m, nn.BatchNorm2d):
                # torchvision's MobileNet/EfficientNet use momentum 0.01, tuned for long ImageNet runs. In a
                # short fine-tune or from scratch the running statistics then lag the weights by hundreds of
                # steps and every eval-mode prediction collapses to one class.
                m.momentum = 0.1
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1) * 255.0)
        # A 1x1 conv scores every location: the map is the heatmap, and the logit pools its most
        # suspicious eighth. A defect is local (a logo, a barcode), so a global average would dilute it.
        self.cam = nn.Conv2d(c, 1, kernel_size=1)
        self.topk_frac = topk_frac
        self.embed = nn.Linear(c, EMBED_DIM)
        self.n_products = n_products
        self.product = nn.Linear(c, n_products) if n_products > 1 else None
        # (product, label) proxies for the embedding's training loss; unused at inference, so export drops them.
        self.proxies = nn.Parameter(torch.randn(2 * max(1, n_products), EMBED_DIM) * 0.1)

    def load_backbone(self, path: str) -> None:
        """Load torchvision ImageNet weights (a state dict file) into the feature extractor."""
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state) if isinstance(state, dict) else state
        prefix = "features." if not self.backbone_name.startswith("resnet") else ""
        mine = self.features.state_dict()
        picked = {}
        for k, v in state.items():
            k2 = k[len(prefix):] if prefix and k.startswith(prefix) else k
            if self.backbone_name.startswith("resnet"):
                k2 = _resnet_key(k2)
            if k2 in mine and mine[k2].shape == v.shape:
                picked[k2] = v
        if len(picked) < 0.9 * len(mine):
            raise WeightsError(f"{path}: only {len(picked)} of {len(mine)} backbone tensors match {self.backbone_name}")
        self.features.load_state_dict(picked, strict=False)

    def forward(self, x: torch.Tensor) -> dict:
        x = (x.permute(0, 3, 1, 2).float() - self.mean) / self.std
        f = self.features(x)
        cam = self.cam(f)[:, 0]                                   # (N, h, w)
        flat = cam.flatten(1)
        k = max(1, int(flat.shape[1] * self.topk_frac + 0.5))  # a constant in the exported graph (fixed input size)
        logit = flat.topk(k, dim=1).values.mean(dim=1)
        pooled = f.mean(dim=(2, 3))
        out = {"logit": logit, "heatmap": cam, "embedding": F.normalize(self.embed(pooled), dim=1)}
        if self.product is not None:
            out["product_logits"] = self.product(pooled)
        return out


def _resnet_key(k: str) -> str:
    """torchvision resnet names (conv1, bn1, layer1...) -> indices of our nn.Sequential body."""
    order = ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"]
    head, _, rest = k.partition(".")
    return f"{order.index(head)}.{rest}" if head in order else k
