"""A product's packaging design, drawn from a seed.

A Design is the brand's master artwork as data: wordmark, vector logo, palette,
fine print, EAN-13, lot/serial format and a security region (guilloche, microtext).
Lengths are in units of 1/100 of the package width, so one design renders at any
resolution. Counterfeits are Designs with a few fields changed (see defects.py).

    d = make_design(seed=0, index=3)
    print(d.name, d.ean, d.palette)
"""
from __future__ import annotations

import colorsys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import ImageFont

from .barcode import with_check_digit

ASPECT = 0.62  # package face height / width

# Wordmark fonts and the look-alike a counterfeiter would substitute for each.
FONTS = {
    "sans": "DejaVuSans.ttf", "sans-bold": "DejaVuSans-Bold.ttf", "serif": "DejaVuSerif.ttf",
    "serif-bold": "DejaVuSerif-Bold.ttf", "stix": "STIXGeneral.ttf", "stix-bold": "STIXGeneralBol.ttf",
    "cmss": "cmss10.ttf", "mono": "DejaVuSansMono.ttf",
}
LOOKALIKE = {"sans": "cmss", "cmss": "sans", "sans-bold": "stix-bold", "serif": "stix", "stix": "serif",
             "serif-bold": "stix-bold", "stix-bold": "serif-bold"}
WORDMARK_FONTS = tuple(LOOKALIKE)

_SYLLABLES = ("ka", "lo", "ve", "mi", "ra", "to", "su", "ne", "da", "ri", "po", "la", "zen", "mar", "tel", "vo",
              "qui", "sa", "ber", "no", "fi", "lu", "gra", "tor", "an", "el", "or", "is")
_NOUNS = ("coffee", "tea", "cocoa", "biscuits", "pasta", "rice", "cereal", "crackers", "soap", "balm", "serum",
          "filters", "tablets", "capsules", "lotion", "spice", "oats", "honey")
_ADJS = ("premium", "classic", "organic", "original", "gentle", "intense", "roasted", "fine", "daily", "pure")
_WORDS = ("ingredients", "sugar", "flour", "salt", "extract", "natural", "flavour", "contains", "store", "dry",
          "place", "best", "before", "batch", "produced", "packed", "protective", "atmosphere", "allergens",
          "nutrition", "energy", "protein", "carbohydrate", "vitamin", "mineral", "water", "oil", "cocoa",
          "manufactured", "distributed", "quality", "recycle", "carton", "away", "sunlight", "keep", "children")


@lru_cache(maxsize=None)
def font(key: str, px: int) -> ImageFont.FreeTypeFont:
    """Fonts bundled with matplotlib (DejaVu, STIX, Computer Modern): the same on every machine."""
    import matplotlib

    return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / FONTS[key]), max(4, px))


def _rgb(h: float, s: float, v: float) -> tuple[int, int, int]:
    return tuple(int(round(c * 255)) for c in colorsys.hsv_to_rgb(h % 1.0, s, v))


@dataclass(frozen=True)
class Logo:
    points: int          # star points
    inner: float         # inner/outer radius of the star
    rotation: float      # radians
    ring: float          # ring width / radius
    core: float          # central dot radius / radius
    offset: tuple[float, float] = (0.0, 0.0)  # star centre offset / radius


@dataclass(frozen=True)
class Design:
    name: str
    slug: str
    paper: tuple
    primary: tuple
    secondary: tuple
    accent: tuple
    ink: tuple
    band_h: float
    mirrored: bool
    word_font: str
    word_size: float
    word_tracking: float     # extra space between letters, in units of the font size
    word_weight: float       # stroke width, in units of the font size
    tagline: str
    logo: Logo
    fine_print: tuple[str, ...]
    ean: str
    lot_prefix: str
    guilloche_lines: int
    guilloche_k: int
    guilloche_amp: float
    guilloche_width: float   # px at 400 px package width
    microtext: str
    microtext_mode: str = "sharp"   # sharp | blurred | dashes | missing
    security_visible: bool = True
    ean_printed: str = ""           # digits printed under the bars ("" = same as ean)
    bar_jitter: float = 0.0         # fraction of bars drawn with a width error
    extras: dict = field(default_factory=dict, compare=False)

    @property
    def palette(self) -> dict:
        return {k: getattr(self, k) for k in ("paper", "primary", "secondary", "accent", "ink")}


def _name(rng: np.random.Generator) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(int(rng.integers(2, 4)))).capitalize()


def _fine_print(rng: np.random.Generator, name: str) -> tuple[str, ...]:
    lines = []
    for _ in range(int(rng.integers(5, 7))):
        words = [str(w) for w in rng.choice(_WORDS, size=int(rng.integers(4, 7)))]
        lines.append(" ".join(words).capitalize() + ".")
    lines.append(f"{name} Ltd. Net {int(rng.integers(1, 20)) * 50} g")
    return tuple(lines)


def make_design(seed: int, index: int) -> Design:
    """Product `index` of the benchmark with this seed (independent of how many products there are)."""
    rng = np.random.default_rng([seed, 0xD351, index])
    name = _name(rng)  # the slug carries the index, so two products never share a folder
    hue = rng.random()
    primary = _rgb(hue, rng.uniform(0.55, 0.95), rng.uniform(0.35, 0.75))
    secondary = _rgb(hue + rng.choice([0.33, 0.5, 0.66]) + rng.normal(0, 0.03), rng.uniform(0.4, 0.85), rng.uniform(0.35, 0.7))
    accent = _rgb(hue + rng.uniform(0.1, 0.9), rng.uniform(0.6, 1.0), rng.uniform(0.6, 0.95))
    paper = _rgb(hue + rng.uniform(-0.05, 0.05), rng.uniform(0.0, 0.08), rng.uniform(0.93, 0.99))
    ink = _rgb(hue, rng.uniform(0.1, 0.4), rng.uniform(0.08, 0.2))
    logo = Logo(points=int(rng.integers(5, 9)), inner=float(rng.uniform(0.38, 0.6)),
                rotation=float(rng.uniform(0, np.pi)), ring=float(rng.uniform(0.1, 0.2)),
                core=float(rng.uniform(0.1, 0.22)))
    first12 = "".join(str(d) for d in rng.integers(0, 10, size=12))
    return Design(
        name=name, slug=f"{index:02d}-{name.lower()}", paper=paper, primary=primary, secondary=secondary,
        accent=accent, ink=ink, band_h=float(rng.uniform(20, 27)), mirrored=bool(rng.random() < 0.5),
        word_font=str(rng.choice(WORDMARK_FONTS)), word_size=float(rng.uniform(0.5, 0.62)),
        word_tracking=float(rng.uniform(0.0, 0.08)), word_weight=0.0,
        tagline=f"{rng.choice(_ADJS)} {rng.choice(_NOUNS)}".title(), logo=logo,
        fine_print=_fine_print(rng, name), ean=with_check_digit(first12),
        lot_prefix="".join(rng.choice(list("ABCDEFGHJKLMNPRSTUVWXYZ"), size=2)),
        guilloche_lines=int(rng.integers(10, 16)), guilloche_k=int(rng.integers(5, 11)),
        guilloche_amp=float(rng.uniform(0.15, 0.3)), guilloche_width=float(rng.uniform(0.7, 1.0)),
        microtext=(name.upper() + " ") * 12,
    )
