"""Contact sheet: one genuine item beside one counterfeit of each defect family, with crops.

    genuine synth datasets/synthpack --contact-sheet docs/synthpack.png
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from .capture import photograph
from .defects import FAMILIES, REGION, SEVERITY, counterfeit
from .design import font, make_design
from .render import Item, render

ZOOM = 2  # crops are shown at twice the print resolution


def contact_sheet(path, seed: int = 0, product: int = 0, difficulty: str = "medium", width: int = 640) -> Image.Image:
    d = make_design(seed, product)
    item = Item("00012345", f"{d.lot_prefix}42", (0.0, 0.0), 1.0, 0.15, 1)
    lo, hi = SEVERITY[difficulty]
    sev = (lo + hi) / 2
    genuine, boxes = render(d, item, width)
    thumb_w = width // 2
    rows = []
    for fam in FAMILIES:
        fake_d, fx, detail = counterfeit(d, fam, sev, np.random.default_rng([seed, 7, FAMILIES.index(fam)]), width)
        fake, fake_boxes = render(fake_d, item, width, fx)
        a, b = boxes[REGION[fam]], fake_boxes[REGION[fam]]
        box = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
        if fam == "colour":  # the band and the tagline carry the palette
            box = (0, 0, int(width * 0.45), boxes["tagline"][3])
        rows.append((fam, detail, fake, box))
    th = genuine.height * thumb_w // genuine.width
    crop_h = max((b[3] - b[1]) * ZOOM for *_, b in rows)
    row_h = max(th, crop_h) + 28
    crop_w = max((b[2] - b[0]) * ZOOM for *_, b in rows)
    W = 2 * thumb_w + 2 * crop_w + 50
    photo_bytes, _ = photograph(genuine, np.random.default_rng([seed, 99]), thumb_w * 2)
    import io

    photo = Image.open(io.BytesIO(photo_bytes)).convert("RGB")
    photo = photo.resize((thumb_w, photo.height * thumb_w // photo.width))
    sheet = Image.new("RGB", (W, 40 + photo.height + 30 + row_h * len(rows)), "white")
    dr = ImageDraw.Draw(sheet)
    f = font("sans", 15)
    dr.text((10, 10), f"SynthPack product '{d.name}' ({difficulty}, severity {sev:.2f}): genuine | counterfeit | "
                      f"genuine crop | counterfeit crop (x{ZOOM})", font=f, fill="black")
    sheet.paste(genuine.resize((thumb_w, th), Image.LANCZOS), (10, 40))
    sheet.paste(photo, (20 + thumb_w, 40))
    dr.text((20 + thumb_w + photo.width + 10, 40), "a handheld photo\nof the genuine item", font=f, fill="black")
    y = 40 + photo.height + 30
    for fam, detail, fake, box in rows:
        dr.text((10, y), f"{fam}: {detail}", font=f, fill="black")
        sheet.paste(genuine.resize((thumb_w, th), Image.LANCZOS), (10, y + 22))
        sheet.paste(fake.resize((thumb_w, th), Image.LANCZOS), (20 + thumb_w, y + 22))
        x = 30 + 2 * thumb_w
        for src in (genuine, fake):
            c = src.crop(box)
            c = c.resize((c.width * ZOOM, c.height * ZOOM), Image.NEAREST)
            sheet.paste(c, (x, y + 22))
            dr.rectangle([x - 1, y + 21, x + c.width, y + 22 + c.height], outline=(200, 0, 0))
            x += crop_w + 10
        y += row_h
    sheet.save(path)
    return sheet
