"""The one path from a photo to what a model eats, with the quality of what it eats. The inspector, scan workers,
training, evaluate and the bench scripts all build model inputs here, so a model is trained and judged on exactly
what the handheld feeds it.

    inp = photo_input("IMG_0001.jpg", size=384, limits=meta["quality"])    # whole-photo model
    inp.x, inp.quality.issues, inp.photo_size
    x, q = face_model_input(rect.face, rect.density, face_size=(320, 208))  # comparator, after rectify_photo

photo -> decode (DCT-scaled, infer.photo) -> [rectify onto the template, infer.rectify] -> resize (infer.preprocess)
-> quality gate on what the model sees (infer.quality).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from genuine.infer import quality
from genuine.infer.photo import load_photo
from genuine.infer.preprocess import decode_side, face_input, prepare


@dataclass
class PhotoInput:
    img: Image.Image            # the decoded photo (DCT-scaled: at least decode_side(size) on its short side)
    x: np.ndarray               # (size, size, 3) uint8, letterboxed: what a whole-photo model eats
    quality: quality.Quality    # measured on x

    @property
    def photo_size(self) -> tuple[int, int]:
        return self.img.size


def photo_input(photo, size: int, limits: dict | None = None) -> PhotoInput:
    """A whole-photo model's input from a path, bytes, PIL image or array; raises PhotoError naming the reason."""
    img = load_photo(photo, min_side=decode_side(size))
    x = prepare(img, size)
    return PhotoInput(img, x, quality.assess(x, img.size, size, limits))


def face_model_input(face: np.ndarray, density: float, face_size: tuple[int, int],
                     limits: dict | None = None) -> tuple[np.ndarray, quality.Quality]:
    """A comparator's input from a rectified face (infer.rectify.rectify_photo's `face`, or a cached one) and the
    photo pixels per template pixel it was rectified at (`density`): (uint8 face at face_size, its quality)."""
    x = face_input(face, face_size)
    return x, quality.assess_face(x, density, limits)
