"""Training augmentation: handheld capture, never the counterfeit cues themselves.

The only module that imports albumentations (2.0.x is its last MIT line; keep it swappable).

What it varies is what differs between two photos of the same box on a handheld:
viewpoint, distance, blur, noise, JPEG, exposure and a mild white balance.
What it leaves alone is what tells a fake: no hue or saturation jitter (a colour
shift of a few degrees IS the colour-deviation defect, so jittering hue would teach
the model that off-colour ink is normal), no heavy downscaling or strong blur (they
erase print-quality, microtext and misspelling cues), no cutout (it can hide the defect).

    aug = build(size=384)
    out = apply(aug, image_uint8_hwc, seed=1234)   # pure function of (image, seed)
"""
from __future__ import annotations

import albumentations as A
import cv2
import numpy as np

from genuine.infer.preprocess import PAD_VALUE


def build(size: int) -> A.Compose:
    pad = (PAD_VALUE,) * 3
    return A.Compose([
        A.Affine(rotate=(-12, 12), scale=(0.9, 1.12), translate_percent=(-0.05, 0.05),
                 border_mode=cv2.BORDER_CONSTANT, fill=pad, p=0.7),
        A.Perspective(scale=(0.01, 0.05), border_mode=cv2.BORDER_CONSTANT, fill=pad, p=0.4),
        A.OneOf([A.GaussianBlur(blur_limit=(3, 3), sigma_limit=(0.2, 0.8)),
                 A.MotionBlur(blur_limit=(3, 5))], p=0.25),
        A.RandomBrightnessContrast(brightness_limit=0.15, contrast_limit=0.15, p=0.6),
        A.PlanckianJitter(mode="blackbody", temperature_limit=(4500, 7500), p=0.3),
        A.GaussNoise(std_range=(0.005, 0.025), p=0.3),
        A.ImageCompression(quality_range=(65, 95), p=0.3),
    ], seed=0)


def apply(aug: A.Compose, image: np.ndarray, seed: int) -> np.ndarray:
    """Augment with a per-sample seed, so a run is reproducible and --resume continues exactly."""
    aug.set_random_seed(int(seed) % (2**32))
    return aug(image=image)["image"]
