"""Session fixtures: small SynthPack sets generated once per test run (seconds on a CPU)."""
from __future__ import annotations

import pytest

from train.synthpack.generate import generate

TINY = dict(products=2, items_per_class=8, photos_per_item=2, size=160, difficulty="medium", seed=0, workers=1,
            progress=False)


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory):
    """2 products x 8 genuine + 8 counterfeit items (one per defect family) x 2 photos, 160 px."""
    out = tmp_path_factory.mktemp("synth") / "tiny"
    generate(out, **TINY)
    return out
