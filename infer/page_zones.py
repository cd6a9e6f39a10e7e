"""The constants the page's zone checks (web/site/zones.js, text.js, ocr.js) read, taken from the Python modules they
port.

    constants["zones"] = zone_constants()    # site.json constants.zones (infer/page_build.py)

Read here, never retyped in JavaScript: a change to a limit in zone_barcode, zone_colour or zone_text reaches the page
with the next `genuine page build`. A change to how zones are learnt or checked bumps ZONES_VERSION, which zones.js's
PORTED must follow (tests/test_page_zones.py).
"""
from __future__ import annotations

from genuine.infer import colour, ocr, text_screen, zone_barcode, zone_colour, zone_text, zones


def zone_constants() -> dict:
    return {
        "barcode": {"margin": zone_barcode.MARGIN, "sharp_bars": zone_barcode.SHARP_BARS,
                    "min_contrast": zone_barcode.MIN_CONTRAST, "min_module_px": zone_barcode.MIN_MODULE_PX},
        "colour": {"min_paper": zone_colour.MIN_PAPER, "kl": zone_colour.KL, "tiles": list(zone_colour.TILES),
                   "tile_px": zone_colour.TILE_PX,
                   # sRGB (linear) -> XYZ and the D65 white: colour.linear_to_lab's
                   "m": colour._M.tolist(), "white": colour._WHITE.tolist()},
        # zones.check's readable lines, zone_text.check's limits, text_screen's strips and ocr.py's recognition input
        "text": {"min_text_px": zones.MIN_TEXT_PX, "read_conf": zone_text.READ_CONF, "fail_conf": zone_text.FAIL_CONF,
                 "char_conf": zone_text.CHAR_CONF, "end_slack": zone_text.END_SLACK, "margin": zone_text.MARGIN,
                 "read_lines": zone_text.READ_LINES, "segment": zone_text.SEGMENT,
                 "screen": {"height": text_screen.HEIGHT, "slack": text_screen.SLACK, "window": text_screen.WINDOW,
                            "min_std": text_screen.MIN_STD},
                 "rec_height": ocr.REC_HEIGHT, "max_ratio": ocr.MAX_RATIO,
                 # str.isdigit's characters (a line that is a number keeps its last digit): Python's Unicode tables
                 "digits": "".join(chr(c) for c in range(0x110000) if chr(c).isdigit())},
    }
