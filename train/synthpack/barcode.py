"""EAN-13: check digit and bar pattern (95 modules), as printed on retail packaging.

    ean = with_check_digit("590123412345")      # -> "5901234123457"
    modules = ean13_modules(ean)                # "10100011010..." (1 = bar)
"""
from __future__ import annotations

_L = ["0001101", "0011001", "0010011", "0111101", "0100011", "0110001", "0101111", "0111011", "0110111", "0001011"]
_R = ["".join("1" if b == "0" else "0" for b in code) for code in _L]
_G = [code[::-1] for code in _R]
# The first digit is not drawn as bars: it selects the L/G parity of the left half.
_PARITY = ["LLLLLL", "LLGLGG", "LLGGLG", "LLGGGL", "LGLLGG", "LGGLLG", "LGGGLL", "LGLGLG", "LGLGGL", "LGGLGL"]


def check_digit(first12: str) -> int:
    if len(first12) != 12 or not first12.isdigit():
        raise ValueError(f"EAN-13 needs 12 digits before the check digit, got {first12!r}")
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(first12))
    return (10 - total % 10) % 10


def with_check_digit(first12: str) -> str:
    return first12 + str(check_digit(first12))


def is_valid(ean: str) -> bool:
    return len(ean) == 13 and ean.isdigit() and check_digit(ean[:12]) == int(ean[12])


def ean13_modules(ean: str) -> str:
    """The 95-module pattern for 13 digits (valid or not: counterfeits print wrong ones)."""
    if len(ean) != 13 or not ean.isdigit():
        raise ValueError(f"EAN-13 needs 13 digits, got {ean!r}")
    parity = _PARITY[int(ean[0])]
    left = "".join((_L if p == "L" else _G)[int(d)] for p, d in zip(parity, ean[1:7]))
    right = "".join(_R[int(d)] for d in ean[7:])
    return "101" + left + "01010" + right + "101"
