"""The comparator: does this rectified face differ from its product's template in a way genuine units do not?

    net = Comparator("efficientnet_lite0")              # ImageNet weights: backbones.load_weights(net.body, path)
    out = net(face_uint8, template_uint8)               # both (N, H, W, 3) uint8 in the template's frame
    out["logit"], out["heatmap"]                        # (N,), (N, H/4, W/4): where on the package

One backbone (shared weights) describes both images at several strides: fine print needs stride 4-8, logos
and colour blocks stride 16. A colour level adds what ImageNet features barely keep: the log-chroma of each
stride-8 cell relative to the image's own mean colour, so one white-balance gain on the whole photo cancels
and a shifted ink does not. At each level a small head reads [face, template, face - template] and scores
every location; the maps are summed at the finest stride into the heatmap, in the package's own frame, and the
logit pools its most suspicious locations (a defect is local: a mean would dilute it). Normalisation happens
inside, so the exported graph takes the same uint8 pixels as the runtime.

features() and score() split the forward pass so that training with a frozen backbone can compute the features
once and train the heads on them (train/train_comparator.py); forward() is exactly score(features(face),
features(template)).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from genuine.infer.preprocess import MEAN, STD
from genuine.train import backbones

COLOUR_STRIDE = 8


class Comparator(nn.Module):
    def __init__(self, backbone: str = "efficientnet_lite0", strides=(4, 8, 16), topk_frac: float = 0.02,
                 hidden: int = 64, colour: bool = True, freeze_backbone: bool = False):
        super().__init__()
        self.backbone_name, self.strides, self.topk_frac = backbone, tuple(strides), topk_frac
        self.colour, self.freeze_backbone = colour, freeze_backbone
        self.body = backbones.create(backbone)
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1) * 255.0)
        chans = list(self.body.channels_at(self.strides)) + ([3] if colour else [])
        # 1x1 to mix [face, template, difference], one 3x3 for a cell of context (rectification is good to a
        # pixel or two, not to zero), 1x1 to a score.
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Conv2d(3 * c, hidden, 1), nn.ReLU(inplace=True),
                          nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(hidden, 1, 1))
            for c in chans)
        if freeze_backbone:
            self.body.requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze_backbone:
            self.body.eval()  # frozen means its BatchNorm statistics too
        return self

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """uint8 (N, H, W, 3) -> the maps the heads compare: backbone levels, then the colour level."""
        x = x.permute(0, 3, 1, 2).float()
        maps = self.body.pyramid((x - self.mean) / self.std, self.strides)
        if self.colour:
            c = torch.log(F.avg_pool2d(x, COLOUR_STRIDE) + 8.0)        # +8: dark cells carry no reliable colour
            c = c - c.mean(dim=1, keepdim=True)                         # chroma: luminance removed per cell
            maps.append(c - c.mean(dim=(2, 3), keepdim=True))           # and the image's own cast removed
        return maps

    def score(self, fa: list[torch.Tensor], fb: list[torch.Tensor]) -> dict:
        """Heads over the face's (fa) and the template's (fb) maps -> {"logit": (N,), "heatmap": (N, h, w)}."""
        heat = None
        for head, a, b in zip(self.heads, fa, fb):
            s = head(torch.cat([a, b.expand_as(a), a - b], dim=1))
            heat = s if heat is None else heat + F.interpolate(s, size=heat.shape[-2:], mode="bilinear",
                                                               align_corners=False)
        heat = heat[:, 0]                                          # (N, h, w) at the finest stride
        flat = heat.flatten(1)
        k = max(1, int(flat.shape[1] * self.topk_frac + 0.5))      # a constant in the exported graph
        return {"logit": flat.topk(k, dim=1).values.mean(dim=1), "heatmap": heat}

    def forward(self, face: torch.Tensor, template: torch.Tensor) -> dict:
        n = face.shape[0]
        # One pass over both images: the backbone is shared.
        maps = self.features(torch.cat([face, template]))
        return self.score([m[:n] for m in maps], [m[n:] for m in maps])

    def config(self) -> dict:
        """What build() needs to make this architecture again (stored in checkpoints)."""
        return {"backbone": self.backbone_name, "strides": list(self.strides), "topk_frac": self.topk_frac,
                "hidden": self.heads[0][0].out_channels, "colour": self.colour,
                "freeze_backbone": self.freeze_backbone}


def build(config: dict) -> Comparator:
    return Comparator(config["backbone"], config["strides"], config["topk_frac"], config["hidden"],
                      config["colour"], config.get("freeze_backbone", False))
