"""The constants the page's zone checks (web/site/zones.js) read, taken from the Python modules they port.

    constants["zones"] = zone_constants()    # site.json constants.zones (infer/page_build.py)

Read here, never retyped in JavaScript: a change to a limit in zone_barcode or zone_colour reaches the page with the
next `genuine page build`. A change to how zones are learnt or checked bumps ZONES_VERSION, which zones.js's PORTED
must follow (tests/test_page_zones.py).
"""
from __future__ import annotations

from genuine.infer import colour, zone_barcode, zone_colour


def zone_constants() -> dict:
    return {
        "barcode": {"margin": zone_barcode.MARGIN, "sharp_bars": zone_barcode.SHARP_BARS,
                    "min_contrast": zone_barcode.MIN_CONTRAST, "min_module_px": zone_barcode.MIN_MODULE_PX},
        "colour": {"min_paper": zone_colour.MIN_PAPER, "kl": zone_colour.KL, "tiles": list(zone_colour.TILES),
                   "tile_px": zone_colour.TILE_PX,
                   # sRGB (linear) -> XYZ and the D65 white: colour.linear_to_lab's
                   "m": colour._M.tolist(), "white": colour._WHITE.tolist()},
    }
