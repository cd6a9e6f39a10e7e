"""The comparator: does this rectified face differ from its product's template in a way genuine units do not?

    net = Comparator("efficientnet_lite0")              # ImageNet weights: backbones.load_weights(net.body, path)
    out = net(face_uint8, template_uint8)               # both (N, H, W, 3) uint8 in the template's frame
    out["logit"], out["heatmap"]                        # (N,), (N, H/s, W/s): where on the package

One backbone (shared weights) describes both images at several strides: fine print needs stride 4-8, logos
and colour blocks stride 16. At each stride a small head reads [face, template, |face - template|] and scores
every location; the maps are summed at the finest stride into the heatmap, in the package's own frame, and the
logit pools its most suspicious locations (a defect is local: a mean would dilute it). Normalisation happens
inside, so the exported graph takes the same uint8 pixels as the runtime.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from infer.preprocess import MEAN, STD
from train import backbones


class Comparator(nn.Module):
    def __init__(self, backbone: str = "efficientnet_lite0", strides=(8, 16), topk_frac: float = 0.02,
                 hidden: int = 64):
        super().__init__()
        self.backbone_name, self.strides, self.topk_frac = backbone, tuple(strides), topk_frac
        self.body = backbones.create(backbone)
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1) * 255.0)
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Conv2d(3 * c, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, 1, 1))
            for c in self.body.channels_at(self.strides))

    def _pyramid(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.body.pyramid((x.permute(0, 3, 1, 2).float() - self.mean) / self.std, self.strides)

    def forward(self, face: torch.Tensor, template: torch.Tensor) -> dict:
        n = face.shape[0]
        # One pass over both images: the backbone is shared, and BatchNorm sees them as one batch.
        maps = self._pyramid(torch.cat([face, template]))
        heat = None
        for head, f in zip(self.heads, maps):
            a, b = f[:n], f[n:]
            s = head(torch.cat([a, b, (a - b).abs()], dim=1))
            heat = s if heat is None else heat + F.interpolate(s, size=heat.shape[-2:], mode="bilinear",
                                                               align_corners=False)
        heat = heat[:, 0]                                          # (N, h, w) at the finest stride
        flat = heat.flatten(1)
        k = max(1, int(flat.shape[1] * self.topk_frac + 0.5))      # a constant in the exported graph
        return {"logit": flat.topk(k, dim=1).values.mean(dim=1), "heatmap": heat}
