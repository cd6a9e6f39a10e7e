"""The comparator learns what differs from the template, not what a face looks like (seconds on a CPU)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from genuine.train.comparator import Comparator
from genuine.train.metrics import binary_metrics

SIZE = 64


def pairs(n: int, rng: np.random.Generator):
    """(faces, templates, labels, defect centres): a random printed texture as the template; its face is the
    same print shifted by up to a pixel, with another exposure and sensor noise (genuine tolerances). Half the
    templates carry a flat square of their own, so a flat square alone proves nothing; a counterfeit's face
    carries one the template does not have."""
    faces, templates, labels, where = [], [], [], []
    for i in range(n):
        t = cv2.GaussianBlur(rng.integers(0, 256, (SIZE, SIZE, 3)).astype(np.uint8), (0, 0), 1.5)
        t = cv2.normalize(t, None, 0, 255, cv2.NORM_MINMAX)
        if rng.random() < 0.5:
            x, y = rng.integers(4, SIZE - 12, 2)
            t[y:y + 6, x:x + 6] = rng.integers(0, 256, 3)
        m = np.float32([[1, 0, rng.uniform(-1, 1)], [0, 1, rng.uniform(-1, 1)]])
        face = cv2.warpAffine(t, m, (SIZE, SIZE), borderMode=cv2.BORDER_REFLECT).astype(np.float32)
        face = face * rng.uniform(0.8, 1.2) + rng.normal(0, 4, face.shape)
        label, centre = i % 2, (-1, -1)
        if label:
            x, y = rng.integers(8, SIZE - 16, 2)
            r = int(rng.integers(4, 7))
            face[y:y + r, x:x + r] = rng.integers(0, 256, 3)
            centre = (x + r / 2, y + r / 2)
        faces.append(np.clip(face, 0, 255).astype(np.uint8))
        templates.append(t)
        labels.append(label)
        where.append(centre)
    return (torch.from_numpy(np.stack(faces)), torch.from_numpy(np.stack(templates)),
            torch.tensor(labels, dtype=torch.float32), np.array(where))


@pytest.mark.slow   # minutes of CPU training: the full suite's single longest test
def test_a_tiny_comparator_separates_a_planted_defect_from_genuine_variation():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    net = Comparator("mobilenet_v3_small", strides=(4, 8), hidden=32)
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3)
    for _ in range(400):   # fresh pairs every step: it must learn the rule, it cannot memorise pairs
        f, t, y, _ = pairs(32, rng)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(f, t)["logit"], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    f, t, y, where = pairs(96, np.random.default_rng(1))
    net.eval()
    with torch.no_grad():
        out = net(f, t)
        alone = net(f, f)["logit"]      # the face against itself: no difference, no defect
    assert binary_metrics(y.numpy().astype(int), torch.sigmoid(out["logit"]).numpy())["auroc"] > 0.85
    assert out["heatmap"].shape == (96, SIZE // 4, SIZE // 4)
    # The heatmap says where: on most counterfeits its peak lies on the planted square (stride 4 cells).
    hits = 0
    for i in np.nonzero(y.numpy())[0]:
        py, px = np.unravel_index(out["heatmap"][i].argmax().item(), out["heatmap"].shape[-2:])
        hits += abs(px * 4 + 2 - where[i][0]) <= 8 and abs(py * 4 + 2 - where[i][1]) <= 8
    assert hits >= 0.6 * y.sum().item()
    # Counterfeits compared with themselves look like genuine ones: the score comes from the template.
    assert alone[y == 1].mean() < out["logit"][y == 1].mean()


def test_comparator_shapes_and_export():
    import onnxruntime as ort

    net = Comparator("mobilenet_v3_small", strides=(8, 16)).eval()
    f = torch.randint(0, 256, (2, 96, 128, 3), dtype=torch.uint8)
    t = torch.randint(0, 256, (2, 96, 128, 3), dtype=torch.uint8)
    with torch.no_grad():
        out = net(f, t)
    assert out["logit"].shape == (2,) and out["heatmap"].shape == (2, 12, 16)
    import io

    buf = io.BytesIO()
    torch.onnx.export(net, (f, t), buf, input_names=["face", "template"], output_names=["logit", "heatmap"],
                      dynamic_axes={"face": {0: "n"}, "template": {0: "n"}}, opset_version=17, dynamo=False)
    sess = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    logit, heat = sess.run(None, {"face": f.numpy(), "template": t.numpy()})
    assert np.abs(logit - out["logit"].numpy()).max() < 1e-4
    assert np.abs(heat - out["heatmap"].numpy()).max() < 1e-4


def test_twin_targets_mark_where_a_counterfeit_differs_from_its_twin():
    from genuine.train.comparator_frozen import twin_targets

    g = torch.Generator().manual_seed(0)
    base = [torch.randn(4, 8, 16, 24, generator=g), torch.randn(4, 16, 8, 12, generator=g)]
    for b in base:
        b[1], b[3] = b[0] + 0.05 * torch.randn(b[0].shape, generator=g), b[2]   # twins: the same print and capture
    feats = [b.clone() for b in base]
    feats[0][0, :, 3:5, 10:13] += 3.0          # face 0 differs from its twin (face 1) in one stride-4 patch
    feats[1][2, :, 6:8, 0:2] += 3.0           # face 2 differs from face 3 in one stride-8 patch
    t = twin_targets([f.half() for f in feats], np.array([[0, 1], [2, 3]]))
    assert t.shape == (2, 16, 24)
    assert t[0, 3:5, 10:13].all() and t[0].sum() <= 12
    assert t[1, 12:16, 0:4].float().mean() > 0.5 and t[1, :8].sum() == 0


def test_twin_pairs_come_from_synthpack_twins(tmp_path):
    from genuine.infer.templates import load_templates
    from genuine.train.data import select
    from genuine.train.face_data import FaceSet, twin_pairs
    from genuine.train.layout import discover
    from genuine.train.synthpack.generate import generate

    generate(tmp_path / "t", products=1, items_per_class=6, photos_per_item=1, size=320, difficulty="medium",
             seed=0, workers=1, progress=False, twins=True)
    ds = discover(tmp_path / "t")
    fs = FaceSet.build(ds.root, select(ds, "train"), load_templates(ds.root), (96, 64), workers=1)
    pairs = twin_pairs(fs)
    assert len(pairs) >= 2
    for c, g in pairs:
        a, b = fs.records[c], fs.records[g]
        assert (a.label, b.label) == ("counterfeit", "genuine") and b.item_id == a.item_id + "t"
        assert a.extra["photo"] == b.extra["photo"]
