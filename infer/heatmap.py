"""Where the model looked: the score map drawn over the photo (numpy + Pillow; OpenCV for the projection).

    overlay(photo, heat, model_size).save("heatmap.png")             # whole-photo model: its letterboxed input
    overlay_face(face, heat).save("face.png")                        # comparator: on the rectified face
    overlay_photo(photo, heat, H, template_wh).save("heatmap.png")   # ... projected back onto the photo
    where(heat)   # "upper left"
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from genuine.infer.preprocess import letterbox_geometry

# A compact perceptual ramp (dark blue -> cyan -> yellow -> red), 256 entries.
_STOPS = np.array([[0, 0, 80], [0, 90, 200], [0, 200, 200], [250, 230, 0], [230, 20, 20]], np.float32)
LUT = np.stack([np.interp(np.linspace(0, 4, 256), np.arange(5), _STOPS[:, c]) for c in range(3)], 1).astype(np.uint8)


def _photo_map(photo: Image.Image, heat: np.ndarray, model_size: int) -> np.ndarray:
    """Score map (logits on the letterboxed input) -> 0..1 over the photo's own pixels, relative to its own
    range: the picture answers "where did it look", the score itself is reported beside it."""
    square = np.asarray(Image.fromarray(_relative(heat), "F").resize((model_size, model_size), Image.BILINEAR))
    _, nw, nh, left, top = letterbox_geometry(photo.width, photo.height, model_size)
    return square[top:top + nh, left:left + nw]


def _shrunk(photo: Image.Image, max_side: int) -> tuple[Image.Image, float]:
    k = min(1.0, max_side / max(photo.size))
    if k < 1:
        photo = photo.resize((max(1, round(photo.width * k)), max(1, round(photo.height * k))), Image.BILINEAR)
    return photo, k


def _blend(base: Image.Image, m: np.ndarray, alpha: float, inside: np.ndarray | None = None) -> Image.Image:
    """m: 0..1 at base's size; `inside` (0..1) limits the tint to where the map means something."""
    colour = LUT[np.clip(m * 255, 0, 255).astype(np.uint8)]
    a = alpha * np.sqrt(m)  # hot areas stand out; below the median the package is shown as it is
    if inside is not None:
        a = a * inside
    out = np.asarray(base.convert("RGB"), np.float32) * (1 - a[..., None]) + colour.astype(np.float32) * a[..., None]
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))


def _relative(heat: np.ndarray) -> np.ndarray:
    """Score map -> 0..1 for drawing: smoothed over about a cell (a hot spot of a few cells reads as a region, not
    as specks) and scaled from the map's median (half the package stays untinted) to its maximum."""
    import cv2

    h = cv2.GaussianBlur(heat.astype(np.float32), (0, 0), 1.0)
    lo = float(np.median(h))
    return np.clip((h - lo) / max(float(h.max()) - lo, 1e-6), 0.0, 1.0)


def overlay(photo: Image.Image, heat: np.ndarray, model_size: int, max_side: int = 1024, alpha: float = 0.45) -> Image.Image:
    base, _ = _shrunk(photo, max_side)
    m = _photo_map(photo, heat, model_size)
    return _blend(base, np.asarray(Image.fromarray(m, "F").resize(base.size, Image.BILINEAR)), alpha)


def zone_boxes(evidence: dict | None) -> list:
    """The boxes (0..1 of the face) of the zone checks that failed (Result.evidence["zones"]), to draw."""
    found = ((evidence or {}).get("zones") or {}).get("findings") or []
    return [f["box"] for f in found if f.get("state") == "fail" and f.get("box")]


def _outline(img: Image.Image, polygons: list) -> Image.Image:
    """Failing zones drawn as red outlines over the overlay: where the officer looks first."""
    from PIL import ImageDraw

    draw = ImageDraw.Draw(img)
    width = max(2, round(max(img.size) / 300))
    for pts in polygons:
        draw.line([tuple(map(float, p)) for p in pts] + [tuple(map(float, pts[0]))], fill=(230, 20, 20), width=width)
    return img


def overlay_face(face: np.ndarray, heat: np.ndarray, alpha: float = 0.45, boxes: list = ()) -> Image.Image:
    """The comparator's map over the rectified face: the package in its own frame, whatever the photo's angle;
    boxes: failing zones (zone_boxes) outlined."""
    base = Image.fromarray(face)
    img = _blend(base, np.asarray(Image.fromarray(_relative(heat), "F").resize(base.size, Image.BILINEAR)), alpha)
    w, h = img.size
    return _outline(img, [[(x0 * w, y0 * h), (x1 * w, y0 * h), (x1 * w, y1 * h), (x0 * w, y1 * h)]
                          for x0, y0, x1, y1 in boxes])


def overlay_photo(photo: Image.Image, heat: np.ndarray, H: np.ndarray, template_wh: tuple[int, int],
                  max_side: int = 1024, alpha: float = 0.45, boxes: list = ()) -> Image.Image:
    """The comparator's map projected back onto the photo through the rectification's homography H
    (template pixels -> full-resolution photo pixels): the officer sees the spot on the package in hand; boxes:
    failing zones (zone_boxes) outlined where they are on the package."""
    import cv2

    base, k = _shrunk(photo, max_side)
    tw, th = template_wh
    m = cv2.resize(_relative(heat), (tw, th), interpolation=cv2.INTER_LINEAR)
    to_base = np.diag([k, k, 1.0]) @ np.asarray(H, np.float64)
    warped = cv2.warpPerspective(m, to_base, base.size, flags=cv2.INTER_LINEAR, borderValue=0)
    inside = cv2.warpPerspective(np.ones((th, tw), np.float32), to_base, base.size, flags=cv2.INTER_LINEAR,
                                 borderValue=0)
    quads = [np.float32([[x0 * tw, y0 * th], [x1 * tw, y0 * th], [x1 * tw, y1 * th], [x0 * tw, y1 * th]])
             for x0, y0, x1, y1 in boxes]
    return _outline(_blend(base, warped, alpha, inside),
                    [cv2.perspectiveTransform(q[None], to_base)[0] for q in quads])


def where(heat: np.ndarray) -> str:
    """The hottest region of the map in words an officer can use."""
    y, x = np.unravel_index(int(np.argmax(heat)), heat.shape)
    h, w = heat.shape
    row = ("upper", "middle", "lower")[min(2, int(3 * (y + 0.5) / h))]   # by cell centre, not corner
    col = ("left", "centre", "right")[min(2, int(3 * (x + 0.5) / w))]
    return "centre" if (row, col) == ("middle", "centre") else f"{row} {col}".replace("middle ", "")
