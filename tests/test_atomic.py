"""genuine.infer.atomic: the one atomic write, used by every output the tool leaves behind."""
from __future__ import annotations

import os
import stat

import pytest

from genuine.infer.atomic import MODE, atomic_write, write_text
from genuine.train.layout import write_manifest


def _mode(p) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def test_a_failed_write_leaves_the_old_file_and_no_debris(tmp_path):
    path = tmp_path / "report.json"
    write_text(path, "old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(path, "w") as fh:
            fh.write("half of the new")
            raise KeyboardInterrupt      # Ctrl-C mid-write
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["report.json"]


def test_modes_are_readable_by_colleagues_and_kept_on_replace(tmp_path):
    new = tmp_path / "sub" / "summary.json"
    write_text(new, "{}")                 # the folder is created, the file is 0644 (mkstemp alone gives 0600)
    assert _mode(new) == MODE == 0o644
    os.chmod(new, 0o600)                  # a user who locked a file down keeps it locked after a rewrite
    write_text(new, "{}\n")
    assert _mode(new) == 0o600 and new.read_text() == "{}\n"


def test_manifest_goes_through_it(tmp_path):
    path = tmp_path / "manifest.csv"
    write_manifest(path, [{"path": "a/genuine/x.jpg", "label": "genuine"}])
    assert _mode(path) == 0o644 and path.read_text().splitlines()[0] == "path,label"
