"""`genuine data split`: items kept whole, stratified, deterministic, duplicates together, manifest safety."""
import csv
import shutil
from collections import defaultdict

import numpy as np
import pytest
from PIL import Image

from genuine.cli import main as cli
from genuine.train.split import allocate, parse_ratios, split_dataset

PATTERN = r"item_(\d+)_"


def save(path, seed):
    # Upscaled random colour fields: distinct seeds are never near duplicates for `data check`.
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).resize((96, 72), Image.BICUBIC).save(path)


def make_dataset(root, products=("bottle", "watch"), items=7, photos=3):
    seed = 0
    for product in products:
        for label in ("genuine", "counterfeit"):
            for item in range(items):
                for k in range(photos):
                    seed += 1
                    save(root / product / label / f"item_{item:03d}_{k}.jpg", seed)
    return root


def read_rows(root):
    with open(root / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def splits_per_item(rows):
    out = defaultdict(set)
    for row in rows:
        out[(row["product"], row["label"], row["item_id"])].add(row["split"])
    return out


def test_items_kept_whole_and_stratified(tmp_path):
    make_dataset(tmp_path)
    rows, columns, warnings = split_dataset(tmp_path, item_pattern=PATTERN)
    assert columns == ["path", "product", "label", "item_id", "split"]
    # item_000 under genuine/ and under counterfeit/ are two items, written apart so `data check` agrees
    assert warnings == ["14 item id(s) from --item-pattern occur under both genuine and counterfeit "
                        "(first: bottle 000); kept apart as genuine-ID and counterfeit-ID"]
    assert {r["item_id"] for r in rows if r["path"].startswith("bottle/counterfeit/item_000_")} == {"counterfeit-000"}
    assert len(rows) == 2 * 2 * 7 * 3
    per_item = splits_per_item(rows)
    assert len(per_item) == 2 * 2 * 7 and all(len(s) == 1 for s in per_item.values())
    per_stratum = defaultdict(list)
    for (product, label, _), (split,) in per_item.items():
        per_stratum[(product, label)].append(split)
    for splits in per_stratum.values():  # 7 items at 0.7/0.15/0.15 -> largest remainder 5/1/1
        assert sorted(splits) == ["test", "train", "train", "train", "train", "train", "val"]


def test_item_ids_unique_across_labels_are_kept(tmp_path):
    save(tmp_path / "genuine" / "item_1_a.jpg", 1)
    save(tmp_path / "genuine" / "item_1_b.jpg", 2)
    save(tmp_path / "fake" / "item_2_a.jpg", 3)
    rows, _, warnings = split_dataset(tmp_path, item_pattern=PATTERN)
    assert [r["item_id"] for r in rows] == ["2", "1", "1"] and warnings == []


def test_deterministic_for_a_seed(tmp_path):
    make_dataset(tmp_path)
    first = split_dataset(tmp_path, item_pattern=PATTERN, seed=3)[0]
    assert split_dataset(tmp_path, item_pattern=PATTERN, seed=3)[0] == first
    assert any(split_dataset(tmp_path, item_pattern=PATTERN, seed=s)[0] != first for s in (4, 5))


def test_exact_duplicates_under_different_items_share_a_split(tmp_path):
    make_dataset(tmp_path, products=("bottle",), items=12, photos=1)
    genuine = tmp_path / "bottle" / "genuine"
    for item in range(6):  # copy item k's photo in as the only photo of a new item 100 + k
        shutil.copy(genuine / f"item_{item:03d}_0.jpg", genuine / f"item_{100 + item}_0.jpg")
    rows, _, _ = split_dataset(tmp_path, item_pattern=PATTERN, seed=0)
    split = {row["path"]: row["split"] for row in rows}
    for item in range(6):
        assert split[f"bottle/genuine/item_{item:03d}_0.jpg"] == split[f"bottle/genuine/item_{100 + item}_0.jpg"]
    assert len({split[f"bottle/genuine/item_{100 + item}_0.jpg"] for item in range(6)}) > 1


def test_warnings_without_pattern_and_for_unmatched_files(tmp_path, capsys):
    make_dataset(tmp_path, products=("bottle",), items=3, photos=2)
    assert cli(["data", "split", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "every photo is treated as its own item" in err and "--item-pattern" in err
    save(tmp_path / "bottle" / "genuine" / "IMG_0001.jpg", 999)
    _, _, warnings = split_dataset(tmp_path, item_pattern=PATTERN, force=True)
    assert any("1 file(s) do not match --item-pattern" in w and "IMG_0001.jpg" in w for w in warnings)


def test_cli_writes_manifest_then_refuses_without_force(tmp_path, capsys):
    make_dataset(tmp_path)
    assert cli(["data", "split", str(tmp_path), "--item-pattern", PATTERN]) == 0
    out = capsys.readouterr().out
    assert f"Manifest saved to {tmp_path / 'manifest.csv'}" in out and f"genuine data check {tmp_path}" in out
    assert "5/15" in out  # 5 train items, 15 photos in each stratum
    before = (tmp_path / "manifest.csv").read_text()
    assert cli(["data", "split", str(tmp_path), "--seed", "1"]) == 1
    assert "--force" in capsys.readouterr().err
    assert (tmp_path / "manifest.csv").read_text() == before


def test_force_keeps_item_ids_and_extra_columns(tmp_path, capsys):
    make_dataset(tmp_path, products=("bottle",))
    assert cli(["data", "split", str(tmp_path), "--item-pattern", PATTERN]) == 0
    capsys.readouterr()
    rows = read_rows(tmp_path)
    for row in rows:  # a user's renamed ids and an extra column must survive a re-split
        row["item_id"] = f"lot-{row['item_id']}"
        row["defect"] = "none" if row["label"] == "genuine" else "blur"
    with open(tmp_path / "manifest.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["path", "defect", "item_id", "label", "split"])
        w.writeheader()
        w.writerows({k: row[k] for k in w.fieldnames} for row in rows)
    assert cli(["data", "split", str(tmp_path), "--seed", "7", "--force"]) == 0
    assert "warning" not in capsys.readouterr().err  # item ids come from the manifest, no pattern needed
    with open(tmp_path / "manifest.csv", newline="") as fh:
        assert csv.DictReader(fh).fieldnames == ["path", "product", "label", "item_id", "split", "defect"]
    after = read_rows(tmp_path)
    kept = {r["path"]: (r["item_id"], r["defect"]) for r in rows}
    assert {r["path"]: (r["item_id"], r["defect"]) for r in after} == kept
    assert all(len(s) == 1 for s in splits_per_item(after).values())
    assert [r["split"] for r in after] != [r["split"] for r in rows]


@pytest.mark.parametrize("ratios", ["0.5,0.5", "0.8,0.3,-0.1", "a,b,c", "0.7,0.2,0.2", "nan,0.5,0.5"])
def test_bad_ratios_exit_2(tmp_path, capsys, ratios):
    make_dataset(tmp_path, products=("bottle",), items=3, photos=1)
    assert cli(["data", "split", str(tmp_path), f"--ratios={ratios}"]) == 2
    assert "--ratios" in capsys.readouterr().err and not (tmp_path / "manifest.csv").exists()


def test_bad_pattern_and_layout_exit_2(tmp_path, capsys):
    make_dataset(tmp_path, products=("bottle",), items=3, photos=1)
    assert cli(["data", "split", str(tmp_path), "--item-pattern", "item_(\\d+"]) == 2
    assert "--item-pattern" in capsys.readouterr().err
    assert cli(["data", "split", str(tmp_path / "bottle" / "genuine")]) == 2


def test_ratios_and_allocation():
    assert parse_ratios("0.8,0.1,0.1") == (0.8, 0.1, 0.1) and parse_ratios([1, 0, 0]) == (1.0, 0.0, 0.0)
    assert allocate(10, (0.7, 0.15, 0.15)) == [7, 2, 1]
    assert allocate(3, (0.7, 0.15, 0.15)) == [1, 1, 1]  # >= 3 items: no non-zero split left empty
    assert allocate(2, (0.7, 0.15, 0.15)) == [2, 0, 0]
    assert allocate(5, (0.8, 0.2, 0.0)) == [4, 1, 0]
    assert allocate(4, (0.0, 0.0, 1.0)) == [0, 0, 4]
    for n in range(50):
        counts = allocate(n, (0.6, 0.25, 0.15))
        assert sum(counts) == n and (n < 3 or min(counts) >= 1)


def test_check_passes_on_the_split_result(tmp_path, capsys):
    make_dataset(tmp_path)
    assert cli(["data", "split", str(tmp_path), "--item-pattern", PATTERN]) == 0
    capsys.readouterr()
    assert cli(["data", "check", str(tmp_path), "--workers", "1"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == (
        "OK: 84 photos, 2 products, splits train/val/test = 60/12/12; no leakage, no unreadable files")


def test_data_list_names_the_held_out_photos_of_a_product(tiny_synth, capsysbinary):
    """genuine data list: the test split's photos of one product, one path per line (what scan @LIST reads)."""
    from genuine.train.layout import discover

    ds = discover(tiny_synth)
    p = ds.products[0]
    assert cli(["data", "list", str(tiny_synth), "--products", p]) == 0
    listed = capsysbinary.readouterr().out.decode().splitlines()
    want = sorted(str(r.path) for r in ds.records if r.split == "test" and r.product == p)
    assert sorted(listed) == want and want
    assert cli(["data", "list", str(tiny_synth), "--products", "no-such"]) == 2
