"""Where a scan's photos come from: folders (recursive), zip archives read in place, path lists.

    for e in entries(["seizure/", "case42.zip", "@list.txt", "-"]):   # "-" reads paths from stdin
        data = read(e)                                                # bytes; raises OSError
Zip entries whose names are absolute or climb out with '..' are refused, never extracted.
"""
from __future__ import annotations

import contextlib
import os
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from infer.photo import MAX_PIXELS, is_photo_path

MAX_ENTRY_BYTES = 1 << 30  # a compressed member claiming more than 1 GB is no phone photo


@dataclass(frozen=True)
class Entry:
    key: str                     # what reports show: a path, or archive.zip!inner/path.jpg
    path: str                    # file on disk (the archive for zip members)
    member: str | None = None    # name inside the archive
    size: int = -1
    mtime_ns: int = 0
    refused: str | None = None   # reason when it must not be read at all
    refused_kind: str = ""

    @property
    def stamp(self) -> tuple:
        """What identifies an unchanged file on a rerun without reading it again."""
        return (self.size, self.mtime_ns)


def _unsafe(name: str) -> bool:
    p = PurePosixPath(name.replace("\\", "/"))
    return name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or ".." in p.parts


def _zip_entries(path: str):
    st = os.stat(path)
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        yield Entry(path, path, size=st.st_size, mtime_ns=st.st_mtime_ns, refused=f"unreadable zip archive ({e})",
                    refused_kind="unreadable")
        return
    with zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            key = f"{path}!{info.filename}"
            stamp = dict(size=info.file_size, mtime_ns=st.st_mtime_ns + info.CRC)  # changes if the member does
            if _unsafe(info.filename):
                yield Entry(key, path, info.filename, refused="refused archive entry: its path escapes the archive",
                            refused_kind="refused_archive_entry", **stamp)
            elif info.file_size > MAX_ENTRY_BYTES or info.file_size > MAX_PIXELS * 4:
                yield Entry(key, path, info.filename, refused=f"archive entry of {info.file_size / 1e9:.1f} GB refused",
                            refused_kind="too_large", **stamp)
            elif info.flag_bits & 0x1:
                yield Entry(key, path, info.filename, refused="encrypted archive entry", refused_kind="unreadable", **stamp)
            elif not PurePosixPath(info.filename).name.startswith("."):
                yield Entry(key, path, info.filename, **stamp)


def _expand(path: str):
    p = Path(path)
    if p.is_dir():
        for dirpath, dirnames, filenames in os.walk(p):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for f in sorted(filenames):
                if not f.startswith("."):
                    yield from _expand(os.path.join(dirpath, f))
    elif p.suffix.lower() == ".zip" and p.is_file():
        yield from _zip_entries(str(p))
    elif p.is_file():
        st = p.stat()
        yield Entry(str(p), str(p), size=st.st_size, mtime_ns=st.st_mtime_ns)
    else:
        yield Entry(str(p), str(p), refused="file not found", refused_kind="missing")


def entries(sources: list[str], stdin=None):
    """Every entry of every source, in a stable order (sorted folders, archive order, list order)."""
    for s in sources:
        if s == "-" or s.startswith("@"):
            with (contextlib.nullcontext(stdin or sys.stdin) if s == "-" else open(s[1:], encoding="utf-8")) as fh:
                for line in fh:
                    line = line.strip()
                    if line and not line.startswith("#"):
                        yield from _expand(line)
        else:
            yield from _expand(s)


_open_zips: dict[str, zipfile.ZipFile] = {}  # per process: reopening a large archive per member is slow


def read(e: Entry) -> bytes:
    if e.member is None:
        return Path(e.path).read_bytes()
    zf = _open_zips.get(e.path)
    if zf is None:
        zf = _open_zips[e.path] = zipfile.ZipFile(e.path)
    with zf.open(e.member) as fh:
        data = fh.read(MAX_ENTRY_BYTES + 1)
    if len(data) > MAX_ENTRY_BYTES:
        raise OSError("archive entry larger than declared")
    return data


def looks_like_photo(e: Entry) -> bool:
    return is_photo_path(e.member or e.path)
