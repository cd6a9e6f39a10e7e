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
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from genuine.infer.photo import MAX_FILE_BYTES, PhotoError, is_photo_path, printable, read_bytes


@dataclass(frozen=True)
class Entry:
    key: str                     # what reports show: a path, or archive.zip!inner/path.jpg
    path: str                    # file on disk (the archive for zip members)
    member: str | None = None    # name inside the archive
    size: int = -1
    mtime_ns: int = 0
    refused: str | None = None   # reason when it must not be read at all
    refused_kind: str = ""
    index: int = -1              # position in the archive's directory: two members may share a name

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
        seen: dict[str, int] = {}
        for i, info in enumerate(zf.infolist()):
            if info.is_dir():
                continue
            # Every member is its own item, also when two share a name (the second is "name (entry 2)").
            seen[info.filename] = seen.get(info.filename, 0) + 1
            key = printable(f"{path}!{info.filename}") + (f" (entry {seen[info.filename]})" if seen[info.filename] > 1 else "")
            stamp = dict(size=info.file_size, mtime_ns=st.st_mtime_ns + info.CRC, index=i)  # changes with the member
            if _unsafe(info.filename):
                yield Entry(key, path, info.filename, refused="refused archive entry: its path escapes the archive",
                            refused_kind="refused_archive_entry", **stamp)
            elif info.file_size > MAX_FILE_BYTES:   # declared: refused unread (what is read is capped too)
                yield Entry(key, path, info.filename, refused=f"archive entry of {info.file_size / 2**20:.0f} MB refused (over {MAX_FILE_BYTES >> 20} MB)",
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
        yield Entry(printable(str(p)), str(p), size=st.st_size, mtime_ns=st.st_mtime_ns)
    elif p.exists():   # a FIFO, device or socket: reading it could block for ever or never end
        yield Entry(printable(str(p)), str(p), refused="not a regular file (a pipe, device or socket); refused",
                    refused_kind="not_image")
    else:
        yield Entry(printable(str(p)), str(p), refused="file not found", refused_kind="missing")


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
    """The entry's bytes, at most MAX_FILE_BYTES counted on what is read (an archive entry may inflate far past
    its declared size). Raises PhotoError (kind and reason) for anything that cannot be read: a damaged archive
    entry is one bad item, never the end of a run."""
    if e.member is None:
        return read_bytes(e.path)
    try:
        zf = _open_zips.get(e.path)
        if zf is None:
            zf = _open_zips[e.path] = zipfile.ZipFile(e.path)
        info = zf.infolist()[e.index] if e.index >= 0 else zf.getinfo(e.member)
        with zf.open(info) as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, KeyError, IndexError, NotImplementedError,
            RuntimeError, ValueError) as err:
        raise PhotoError(e.key, "unreadable", f"damaged archive entry ({type(err).__name__}: {err})") from None
    if len(data) > MAX_FILE_BYTES:
        raise PhotoError(e.key, "too_large", f"archive entry inflates past {MAX_FILE_BYTES >> 20} MB; refused")
    return data


def photo_bytes(sources: list[str], errors: list[str]):
    """(entry, bytes) for every photo entry of `sources`; an entry refused, not a photo or unreadable is appended to
    `errors` as "key: reason" and the rest go on (adding references, genuine photos, a template from photos)."""
    for e in entries(sources):
        if e.refused or not looks_like_photo(e):
            errors.append(f"{e.key}: {e.refused or 'not a photo file'}")
            continue
        try:
            data = read(e)
        except (OSError, PhotoError) as err:
            errors.append(f"{e.key}: {getattr(err, 'reason', err)}")
            continue
        yield e, data


def looks_like_photo(e: Entry) -> bool:
    return is_photo_path(e.member or e.path)
