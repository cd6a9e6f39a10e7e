"""Long stages say how far they are (infer/progress.py): a known total gets a count, rate and ETA, an unknown one a
count and rate; a log file (not a terminal) gets whole lines."""
from __future__ import annotations

from genuine.infer.progress import Progress


def test_progress_lines_for_known_and_unknown_totals(capsys):
    bar = Progress(3, label="rectify", unit="photos")
    for _ in range(3):
        bar.step()
    bar.close()
    err = capsys.readouterr().err
    # a log gets no line for the first item (its rate says nothing), then the last one
    assert "rectify 1/3" not in err and "rectify 3/3" in err and "photos/s  ETA" in err and err.endswith("\n")
    bar = Progress(None, label="genuine photos of tea")
    bar.step(5)
    assert capsys.readouterr().err == ""
    bar.close()                                               # an unknown total says its count at the end
    assert "genuine photos of tea 5 " in capsys.readouterr().err
    quiet = Progress(3, enabled=False)
    quiet.step()
    assert capsys.readouterr().err == ""
