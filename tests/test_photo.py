"""infer.photo.load_photo: the one photo-loading definition, on every awkward input."""
from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

from genuine.infer import photo as photo_mod
from genuine.infer.photo import PhotoError, load_photo


def _jpeg(arr, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=92, **kw)
    return buf.getvalue()


def _pattern(h=120, w=160):
    """Smooth (JPEG-friendly) and asymmetric: a red block marks the top-left corner."""
    yy, xx = np.mgrid[0:h, 0:w]
    a = np.stack([xx * 255 // w, yy * 255 // h, np.full_like(xx, 90)], axis=2).astype(np.uint8)
    a[: h // 3, : w // 3] = (220, 30, 30)
    return a


def test_exif_orientation_is_applied(tmp_path):
    up = _pattern()
    sideways = np.rot90(up, k=1).copy()  # stored rotated, as phones do, with EXIF saying how to undo it
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    (tmp_path / "s.jpg").write_bytes(_jpeg(sideways, exif=exif.tobytes()))
    out = np.asarray(load_photo(tmp_path / "s.jpg"), np.float32)
    assert out.shape == up.shape
    assert np.abs(out - up).mean() < 4  # same picture, upright (JPEG noise aside)
    assert np.abs(np.rot90(out, 2) - up).mean() > 40  # and the check can tell orientations apart


def test_draft_decoding_keeps_at_least_min_side():
    data = _jpeg(np.full((1200, 1600, 3), 128, np.uint8))
    im = load_photo(data, min_side=200)
    assert min(im.size) >= 200 and im.size[0] < 1600  # decoded smaller, never below what was asked
    assert load_photo(data).size == (1600, 1200)


@pytest.mark.parametrize("mode", ["L", "P", "CMYK", "RGBA", "LA", "I;16", "1"])
def test_colour_modes_become_8bit_rgb(mode):
    base = Image.new("RGB", (32, 24), (200, 100, 50))
    if mode == "I;16":
        im = Image.fromarray(np.full((24, 32), 40000, np.uint16))
    elif mode in ("RGBA", "LA"):
        im = base.convert(mode)
        im.putalpha(0)  # fully transparent: must come out white, not the stored colour
    else:
        im = base.convert(mode)
    buf = io.BytesIO()
    im.save(buf, "TIFF" if mode in ("CMYK", "I;16") else "PNG")
    out = load_photo(buf.getvalue())
    assert out.mode == "RGB" and out.size == (32, 24)
    px = out.getpixel((5, 5))
    if mode == "I;16":
        assert abs(px[0] - round(40000 / 257)) <= 1  # scaled, not clipped to 255
    if mode in ("RGBA", "LA"):
        assert px == (255, 255, 255)


def test_arrays_and_pil_images_are_accepted():
    a = _pattern()
    assert np.array_equal(np.asarray(load_photo(a)), a)
    assert np.array_equal(np.asarray(load_photo(Image.fromarray(a))), a)
    with pytest.raises(PhotoError, match="uint8"):
        load_photo(a.astype(np.float32))


@pytest.mark.parametrize("name, data, kind", [
    ("empty.jpg", b"", "empty"),
    ("notes.jpg", b"this is a text file, not a photo\n" * 10, "not_image"),
])
def test_bad_files_give_clear_errors(tmp_path, name, data, kind):
    (tmp_path / name).write_bytes(data)
    with pytest.raises(PhotoError) as e:
        load_photo(tmp_path / name)
    assert e.value.kind == kind and name in str(e.value)


def test_truncated_jpeg_is_refused_not_grey_filled(tmp_path):
    data = _jpeg(np.random.default_rng(1).integers(0, 255, (300, 400, 3), dtype=np.uint8))
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    for min_side in (None, 64):
        with pytest.raises(PhotoError) as e:
            load_photo(tmp_path / "cut.jpg", min_side=min_side)
        assert e.value.kind == "truncated" and "cut.jpg" in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(PhotoError) as e:
        load_photo(tmp_path / "nope.jpg")
    assert e.value.kind == "missing"


def test_a_folder_passed_as_a_photo_is_a_photo_error(tmp_path):
    """Linux opens a folder read-only without complaint: the refusal must name the folder and say why, not raise
    IsADirectoryError from the read, and must not leak the descriptor it opened (a batch goes on for hours)."""
    folder = tmp_path / "IMG_0001.jpg"
    folder.mkdir()
    fds = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    for read in (load_photo, photo_mod.read_bytes):
        with pytest.raises(PhotoError) as e:
            read(folder)
        assert (e.value.kind, e.value.reason) == ("not_image", "is a folder, not a photo")
        assert str(e.value) == f"{folder}: is a folder, not a photo"
    if fds is not None:
        assert len(os.listdir("/proc/self/fd")) == fds


def test_decompression_bomb_is_refused(monkeypatch):
    buf = io.BytesIO()
    Image.new("L", (2000, 2000)).save(buf, "PNG")
    monkeypatch.setattr(photo_mod, "MAX_PIXELS", 1_000_000)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000_000)
    with pytest.raises(PhotoError) as e:
        load_photo(buf.getvalue())
    assert e.value.kind == "too_large"


def test_non_photo_formats_are_refused():
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "GIF")
    with pytest.raises(PhotoError) as e:
        load_photo(buf.getvalue())
    assert e.value.kind == "not_image"


def test_heic_photos_load_when_pillow_heif_is_installed():
    pillow_heif = pytest.importorskip("pillow_heif")
    buf = io.BytesIO()
    pillow_heif.from_pillow(Image.new("RGB", (64, 48), (200, 30, 30))).save(buf, quality=95)
    out = load_photo(buf.getvalue())
    assert out.size == (64, 48) and np.abs(np.asarray(out, np.int16) - (200, 30, 30)).max() < 12
