"""Where templates keep their zones: learnt once per template (seconds: text detection), then read back.

    book = ZoneBook(store.conn)           # a reference store's `zones` table; ZoneBook() a cache folder
    zones = book.get(template)            # infer.zones.learn's dict for this template's pixels, or None

A store's templates learn their zones when they are added (`genuine references add --template`) and carry them
through export and import; templates read from files (a dataset root's template.png, an artwork) keep theirs in a
cache folder beside the file (.cache/zones/) or under $GENUINE_CACHE/zones/, keyed by the template's pixels and
ZONES_VERSION. A folder that cannot be written only means learning again next time.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from genuine.infer.atomic import write_text
from genuine.infer.keypoints import Template
from genuine.infer.zones import ZONES_VERSION, learn, refine

ZONES_SCHEMA = """
CREATE TABLE IF NOT EXISTS zones (
    template TEXT PRIMARY KEY,      -- Template.key: a hash of the template's pixels
    product TEXT NOT NULL,
    version TEXT NOT NULL,
    zones TEXT NOT NULL,            -- JSON, infer.zones.learn
    learnt_at TEXT NOT NULL
);
"""
ZONE_COLUMNS = "template, product, version, zones, learnt_at"


def _folder(t: Template) -> Path | None:
    env = os.environ.get("GENUINE_CACHE")
    if env:
        return Path(env) / "zones"
    src = Path(t.source) if t.source else None
    return src.resolve().parent / ".cache" / "zones" if src is not None and src.is_file() else None


class ZoneBook:
    def __init__(self, conn=None):
        self.conn = conn
        self._memory: dict[tuple, dict | None] = {}

    def get(self, t: Template, learning: bool = True) -> dict | None:
        """The template's zones; in a store, refined by the product's genuine photos aligned to it (the inks'
        tolerances: infer.zones.refine), again whenever those photos change. learning=False: None when they were
        never learnt (learning is seconds a template: a scan's setup must not learn a whole store's up front)."""
        photos = self._genuine(t)
        key = (t.key, tuple(photos))
        if key not in self._memory:
            zones = self._read(t)
            if zones is None:
                if not learning:
                    return None
                zones = learn(t.image)
                self._write(t, zones)
            if photos:
                from genuine.infer.variation_store import STORE_FACE_SIZE, stored_faces

                zones = refine(zones, stored_faces(self.conn, t.product, t.key, STORE_FACE_SIZE))
            self._memory[key] = zones
        return self._memory[key]

    def _genuine(self, t: Template) -> list[str]:
        if self.conn is None:
            return []
        return [s for (s,) in self.conn.execute("SELECT sha256 FROM genuine_faces WHERE product = ? AND template = ? "
                                                "ORDER BY sha256", (t.product, t.key))]

    def _read(self, t: Template) -> dict | None:
        if self.conn is not None:
            row = self.conn.execute("SELECT zones FROM zones WHERE template = ? AND version = ?",
                                    (t.key, ZONES_VERSION)).fetchone()
            return json.loads(row[0]) if row else None
        folder = _folder(t)
        f = folder / f"{t.key}-{ZONES_VERSION}.json" if folder else None
        try:
            return json.loads(f.read_text()) if f is not None and f.exists() else None
        except (OSError, ValueError):
            return None   # a damaged cache file is learnt again

    def _write(self, t: Template, zones: dict) -> None:
        text = json.dumps(zones)
        if self.conn is not None:
            self.conn.execute(f"INSERT OR REPLACE INTO zones ({ZONE_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                              (t.key, t.product, ZONES_VERSION, text, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())))
            return
        folder = _folder(t)
        if folder is None:
            return
        try:
            folder.mkdir(parents=True, exist_ok=True)
            write_text(folder / f"{t.key}-{ZONES_VERSION}.json", text)
        except OSError as e:
            print(f"warning: could not cache the zones of {t.product} in {folder}: {e}", file=sys.stderr)
