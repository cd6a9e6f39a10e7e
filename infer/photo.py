"""Photo loading: the one definition every path uses.

Training's evaluation, export's parity check, the inspector, batch scans and
`genuine data check` all read photos through `load_photo`, so a photo means the
same pixels everywhere (ONNX-vs-torch drift is almost always preprocessing drift).

    from genuine.infer.photo import load_photo, PhotoError
    img = load_photo("IMG_0001.jpg", min_side=640)   # upright 8-bit RGB PIL image
"""
from __future__ import annotations

import io
import os
import stat
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from genuine.infer.errors import GenuineError

# Phone photos go up to 200 MP (some 2024+ sensors); anything larger is refused on
# purpose rather than by Pillow's default 179 MP bomb limit, which would refuse real photos.
MAX_PIXELS = 200_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
# Bytes read from one file or archive entry before decoding: a 200 MP JPEG is ~60 MB, a 16-bit TIFF scan a few
# hundred; more is refused before it costs memory (per scan worker).
MAX_FILE_BYTES = 512 << 20

# Only photo formats: no EPS/PDF (ghostscript), no GIF animations, no icons.
PHOTO_FORMATS = ["JPEG", "MPO", "PNG", "WEBP", "TIFF", "BMP"]
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".tif", ".tiff", ".bmp", ".heic", ".heif"}

try:  # HEIC (iPhone) only when the optional extra is installed
    import pillow_heif

    pillow_heif.register_heif_opener()
    PHOTO_FORMATS.append("HEIF")
except ImportError:  # pragma: no cover - depends on the extra
    pillow_heif = None
Image.init()
PHOTO_FORMATS = [f for f in PHOTO_FORMATS if f in Image.OPEN]  # MPO folded into JPEG in recent Pillow


class PhotoError(GenuineError, ValueError):
    """A photo that cannot be used, with the file and a reason a person can act on.

    kind is one of: missing, empty, not_image, unsupported, truncated, too_large, unreadable.
    """

    def __init__(self, source: str, kind: str, reason: str):
        super().__init__(f"{source}: {reason}")
        self.source, self.kind, self.reason = source, kind, reason


def is_photo_path(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in PHOTO_SUFFIXES


def _name(src) -> str:
    if isinstance(src, (str, os.PathLike)):
        return printable(str(src))
    return f"<{type(src).__name__}>"


def printable(name: str) -> str:
    """A file name as valid UTF-8 text, faithful and reversible by eye: bytes that were not UTF-8 on disk
    (Python keeps them as surrogates) become \\xNN escapes, so reports, CSV, SQLite and a strict stdout take it."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _refuse_irregular(name: str, mode: int) -> None:
    if stat.S_ISDIR(mode):
        raise PhotoError(name, "not_image", "is a folder, not a photo")
    if not stat.S_ISREG(mode):
        raise PhotoError(name, "not_image", "not a regular file (a pipe, device or socket); refused")


def read_bytes(path, limit: int = MAX_FILE_BYTES) -> bytes:
    """A photo file's bytes: regular files only (a FIFO would block for ever, /dev/zero never ends), and at most
    `limit` bytes, counted on what is actually read. Raises PhotoError naming the file and the reason."""
    name = printable(str(path))
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise PhotoError(name, "missing", "file not found") from None
    except IsADirectoryError:
        raise PhotoError(name, "not_image", "is a folder, not a photo") from None
    except OSError as e:
        raise PhotoError(name, "unreadable", f"cannot read file ({e.strerror or e})") from None
    # Checked on the descriptor before os.fdopen: Linux opens a folder read-only without complaint, and fdopen
    # then raises a bare IsADirectoryError (leaking the descriptor) instead of the reason a user can act on.
    try:
        _refuse_irregular(name, os.fstat(fd).st_mode)
    except PhotoError:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as fh:
        try:
            data = fh.read(limit + 1)
        except OSError as e:
            raise PhotoError(name, "unreadable", f"cannot read file ({e.strerror or e})") from None
    if len(data) > limit:
        raise PhotoError(name, "too_large", f"file larger than {limit >> 20} MB; no photo is, refused")
    return data


def _unidentified(data: bytes) -> str:
    """Why Pillow could not open bytes that no format accepted: a known signature means a damaged file."""
    for magic, fmt in ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8", "JPEG"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"),
                       (b"BM", "BMP")):
        if data.startswith(magic):
            return f"damaged {fmt} file: its header cannot be read"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "damaged WEBP file: its header cannot be read"
    return "not a photo in a supported format"


def _open(src, name: str) -> Image.Image:
    if isinstance(src, (str, os.PathLike)):
        data = read_bytes(src)
    elif isinstance(src, (bytes, bytearray, memoryview)):
        data = bytes(src)
    else:
        raise TypeError(f"load_photo takes a path, bytes, PIL image or array, not {type(src).__name__}")
    if not data:
        raise PhotoError(name, "empty", "empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data), formats=PHOTO_FORMATS)
    except Image.DecompressionBombError:
        raise PhotoError(name, "too_large", f"image is larger than {MAX_PIXELS // 1_000_000} MP; refused") from None
    except UnidentifiedImageError:
        hint = " (install genuine[heic] for HEIC photos)" if pillow_heif is None and name.lower().endswith((".heic", ".heif")) else ""
        why = _unidentified(data)
        raise PhotoError(name, "not_image" if why.startswith("not a photo") else "unreadable", why + hint) from None
    except (OSError, ValueError, SyntaxError) as e:
        raise PhotoError(name, "unreadable", f"cannot decode header ({e})") from None


def _to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow mode to 8-bit RGB without the classic mistakes."""
    if im.mode == "RGB":
        return im
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit greyscale: convert('RGB') would clip almost everything to 255; scale instead.
        a = np.asarray(im, dtype=np.float64) / 257.0
        return Image.fromarray(np.clip(a + 0.5, 0, 255).astype(np.uint8), "L").convert("RGB")
    if im.mode == "F":
        a = np.asarray(im, dtype=np.float64)
        scale = 255.0 if a.size and np.nanmax(a) <= 1.0 else 1.0
        return Image.fromarray(np.clip(np.nan_to_num(a) * scale + 0.5, 0, 255).astype(np.uint8), "L").convert("RGB")
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        # Composite on white: dropping alpha would turn transparent areas into whatever was stored there.
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV


def _to_srgb(im: Image.Image, icc: bytes | None) -> Image.Image:
    """Apply an embedded colour profile (Display P3 iPhone photos, CMYK print scans)."""
    if not icc:
        return im
    try:
        from PIL import ImageCms

        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        out_mode = "RGB"
        if im.mode not in ("RGB", "CMYK"):
            return im
        return ImageCms.profileToProfile(im, src, ImageCms.createProfile("sRGB"), outputMode=out_mode)
    except Exception:  # a broken profile is not a broken photo: keep the pixels as stored
        return im


def _grey_filled_rows(im: Image.Image) -> int:
    """Rows at the bottom (in stored order) that libjpeg filled with flat grey (128) after data that ended early
    (an end-of-image marker mid-scan, a header promising more rows than the data holds). Pillow reports no
    warning for these; a real photo never ends in a whole MCU row of exactly 128 in every channel."""
    w, h = im.size
    if not np.all(np.asarray(im.crop((0, h - 1, w, h))) == 128):   # the usual case: one row looked at
        return 0
    flat = np.all(np.asarray(im).reshape(h, -1) == 128, axis=1)
    rows = h - 1 - int(np.flatnonzero(~flat)[-1]) if not flat.all() else h
    return rows if 8 <= rows < h else 0   # a picture grey all over has nothing filled in: not this


def load_photo(src, min_side: int | None = None) -> Image.Image:
    """Decode a photo to an upright 8-bit RGB PIL image.

    src: path, bytes, PIL.Image or HxWx3 / HxW uint8 array.
    min_side: when given, JPEGs are decoded with DCT scaling (libjpeg draft mode) to the
    smallest size whose shorter side is still >= min_side: 5x faster for 12 MP photos, and
    the caller resizes further anyway. None decodes at full resolution.
    Raises PhotoError naming the source and the reason.
    """
    return load_photo_scaled(src, min_side)[0]


def load_photo_scaled(src, min_side: int | None = None) -> tuple[Image.Image, tuple[float, float]]:
    """load_photo, and the photo's full-resolution pixels per decoded pixel (x, y): (1, 1) unless a JPEG was
    decoded DCT-scaled. Coordinates found on the decode map to the full photo through it."""
    if isinstance(src, np.ndarray):
        if src.dtype != np.uint8 or src.ndim not in (2, 3) or (src.ndim == 3 and src.shape[2] not in (3, 4)):
            raise PhotoError("<array>", "unsupported", f"array must be uint8 HxW, HxWx3 or HxWx4, got {src.dtype} {src.shape}")
        return _to_rgb(Image.fromarray(src)), (1.0, 1.0)
    if isinstance(src, Image.Image):
        return _to_rgb(ImageOps.exif_transpose(src)), (1.0, 1.0)

    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is set: truncated photos would be grey-filled "
                           "and judged; genuine refuses to inspect that way")
    name = _name(src)
    im = _open(src, name)
    w, h = im.size
    if w < 1 or h < 1:
        raise PhotoError(name, "unreadable", f"invalid dimensions {w}x{h}")
    if w * h > MAX_PIXELS:
        raise PhotoError(name, "too_large", f"{w}x{h} is {w * h / 1e6:.0f} MP, over the {MAX_PIXELS // 1_000_000} MP limit; refused")
    icc = im.info.get("icc_profile")
    if min_side and im.format in ("JPEG", "MPO") and min(w, h) > 2 * min_side:
        im.draft(im.mode, (min_side, min_side))
    try:
        im.load()
    except OSError as e:
        msg = str(e)
        kind = "truncated" if "truncated" in msg or "broken data stream" in msg else "unreadable"
        raise PhotoError(name, kind, f"{'truncated file' if kind == 'truncated' else 'cannot decode'} ({msg})") from None
    except (ValueError, SyntaxError, EOFError) as e:
        raise PhotoError(name, "unreadable", f"cannot decode ({e})") from None
    except MemoryError:   # a handheld's or a worker's address-space limit, below MAX_PIXELS' worth
        raise PhotoError(name, "too_large", f"not enough memory to decode {w}x{h} ({w * h / 1e6:.0f} MP)") from None
    if im.format in ("JPEG", "MPO") and (filled := _grey_filled_rows(im)):
        raise PhotoError(name, "truncated", f"truncated file: the JPEG data ends early and the decoder filled the "
                                            f"last {filled / im.size[1]:.0%} of rows with grey; refused, never judged")
    factor = (w / im.size[0], h / im.size[1])
    turned = im.getexif().get(0x0112, 1) in (5, 6, 7, 8)
    im = ImageOps.exif_transpose(im)  # handheld photos are stored sideways more often than not
    if im.mode in ("RGB", "CMYK"):
        im = _to_srgb(im, icc)
    return _to_rgb(im), (factor[::-1] if turned else factor)
