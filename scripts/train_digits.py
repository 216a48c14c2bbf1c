#!/usr/bin/env python
"""Build the handwritten-digit model weights (ocr/engines/models/digits.npz).

    make model
    # = .venv/bin/python scripts/train_digits.py \
    #     --data ../shared/data/handwritten-digits/digits-train.npz \
    #     --out ocr/engines/models/digits.npz

Needs PyTorch (``pip install torch==2.13.0``, CPU) at build time only; faxflow reads
the result with NumPy (``faxflow.ocr.engines.digits``). Deterministic: fixed seeds,
``torch.use_deterministic_algorithms(True)`` and a fixed thread count, so the same
machine produces the same weights.

Data: the 5,000 real handwritten digits minus the fixed validation split
(``digits.validation_indices``: 100 per digit, seed ``SPLIT_SEED``), which is never
trained on. Each epoch re-draws every training image through heavy augmentation
(rotation, scale, shear/slant, stroke thickness, elastic distortion, segmentation
crop jitter, FAX-like low resolution + binarisation + noise) and adds synthetic
classes: printed digits from the installed fonts, '/' and '-' separators, and a
reject class '?' (letters, kanji, ticks, crosses, scribbles, blobs, two touching
digits, fragments of a digit). Every sample goes through ``normalize_glyph``, the
same preprocessing the engine uses at run time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT.parent) not in sys.path:  # allow running from a checkout without install
    sys.path.insert(0, str(ROOT.parent))

from faxflow.ocr.engines.digits import (  # noqa: E402
    DEFAULT_CLASSES,
    SPLIT_RULE,
    SPLIT_SEED,
    VAL_PER_CLASS,
    DigitModel,
    normalize_glyph,
    training_indices,
    validation_indices,
)
from faxflow.samples.handwriting import STROKES, draw_strokes  # noqa: E402

CLASSES = DEFAULT_CLASSES
CI = {c: i for i, c in enumerate(CLASSES)}

FONT_DIR = Path("/usr/share/fonts")
PRINT_FONTS = [
    "opentype/ipafont-gothic/ipag.ttf",
    "opentype/ipafont-mincho/ipam.ttf",
    "truetype/vlgothic/VL-Gothic-Regular.ttf",
    "opentype/noto/NotoSansCJK-Regular.ttc",
    "opentype/noto/NotoSansCJK-Bold.ttc",
    "opentype/noto/NotoSerifCJK-Regular.ttc",
    "truetype/dejavu/DejaVuSans.ttf",
    "truetype/dejavu/DejaVuSans-Bold.ttf",
    "truetype/dejavu/DejaVuSerif.ttf",
    "truetype/dejavu/DejaVuSansMono.ttf",
    "truetype/dejavu/DejaVuSansCondensed.ttf",
    "truetype/dejavu/DejaVuSans-Oblique.ttf",
]
JP_FONTS = PRINT_FONTS[:6]
# Letters that do not look like a digit (O/0, I/l/1, Z/2, S/5, B/8, G/6, q/9 ... left out)
REJECT_LETTERS = "ACEFHKLMNPRUVWXYacdefhkmnprtuvwxy"
REJECT_STROKE_LETTERS = "ACEFHKLMNPRUVWXY"
REJECT_KANJI = "月日年個本枚円号済注文納期様"


# --------------------------------------------------------------------------- rendering helpers


def font_glyph(ch: str, font: str, size: int = 64) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFont

    f = ImageFont.truetype(str(FONT_DIR / font), size)
    img = Image.new("L", (size * 3, size * 2), 255)
    ImageDraw.Draw(img).text((size // 2, size // 4), ch, fill=0, font=f)
    a = np.asarray(img)
    ys, xs = np.nonzero(a < 128)
    if len(xs) == 0:
        return a[:0, :0]
    return a[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].copy()


def crop_ink(g: np.ndarray, level: int = 128) -> np.ndarray:
    ys, xs = np.nonzero(g < level)
    if len(xs) == 0:
        return g[:0, :0]
    return g[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def pad(g: np.ndarray, p: int) -> np.ndarray:
    return cv2.copyMakeBorder(g, p, p, p, p, cv2.BORDER_CONSTANT, value=255)


def geom(g, rng, rot=9.0, shear=0.35, sx=(0.75, 1.25), elastic=0.5, thick=0.5):
    """Random affine + elastic + stroke thickness on a page-space glyph (0 = ink, ~60 px)."""
    g = pad(g, 24)
    h, w = g.shape
    a = np.radians(np.clip(rng.normal(0, rot / 2), -rot * 1.5, rot * 1.5))
    sh = rng.uniform(-shear, shear)
    s = rng.uniform(*sx)
    R = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    M = R @ np.array([[1, -sh], [0, 1]]) @ np.diag([s, 1.0])
    c = np.array([w / 2, h / 2])
    A = np.hstack([M, (c - M @ c)[:, None]])
    g = cv2.warpAffine(g, A, (w, h), flags=cv2.INTER_LINEAR, borderValue=255)
    if rng.random() < elastic:
        sigma = rng.uniform(6, 10)
        amp = rng.uniform(1.5, 5.0)
        f = []
        for _ in range(2):
            d = cv2.GaussianBlur(rng.uniform(-1, 1, (h, w)).astype(np.float32), (0, 0), sigma)
            f.append(d / (d.std() + 1e-6) * amp)
        gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        g = cv2.remap(g, gx + f[0], gy + f[1], cv2.INTER_LINEAR, borderValue=255)
    if rng.random() < thick:
        k = int(rng.choice([3, 3, 5]))
        kern = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
        # erode on a 0-ink image makes strokes thicker, dilate thinner
        g = cv2.erode(g, kern) if rng.random() < 0.55 else cv2.dilate(g, kern)
    return g


def segmentation_jitter(g, rng, neighbours=None):
    """What a segmenter does to a glyph: trims a side, leaves a sliver of a neighbour."""
    g = crop_ink(g, 128)
    if g.size == 0:
        return g
    h, w = g.shape
    r = rng.random()
    if r < 0.12:
        f = rng.uniform(0.03, 0.1)
        side = rng.integers(4)
        if side == 0:
            g = g[int(h * f) :]
        elif side == 1:
            g = g[: h - int(h * f)]
        elif side == 2 and w > 10:
            g = g[:, int(w * f) :]
        elif w > 10:
            g = g[:, : w - int(w * f)]
    elif r < 0.22 and neighbours is not None:
        n = crop_ink(neighbours(), 128)
        if n.size:
            k = max(2, int(n.shape[1] * rng.uniform(0.06, 0.18)))
            left = rng.random() < 0.5
            sl = n[:, -k:] if left else n[:, :k]
            # scale the neighbour to the same height, keep a few px of gap
            sl = cv2.resize(sl, (k, h), interpolation=cv2.INTER_AREA)
            gap = np.full((h, int(rng.integers(0, 4))), 255, np.uint8)
            g = np.hstack([sl, gap, g] if left else [g, gap, sl])
    return g


def lowres(g, rng):
    """FAX-like: small glyph height, sometimes half vertical resolution, binarised."""
    g = crop_ink(g, 160)
    if g.size == 0:
        return g
    g = pad(g, 3)
    r = rng.random()
    if r < 0.5:
        th = rng.uniform(10, 16)
    elif r < 0.8:
        th = rng.uniform(16, 30)
    else:
        th = None
    if th is not None:
        s = th / g.shape[0]
        g = cv2.resize(g, (max(2, round(g.shape[1] * s)), max(2, round(g.shape[0] * s))),
                       interpolation=cv2.INTER_AREA)
        if rng.random() < 0.2:  # FAX standard mode: half vertical resolution, then stretched
            hh = max(2, g.shape[0] // 2)
            g = cv2.resize(cv2.resize(g, (g.shape[1], hh), interpolation=cv2.INTER_AREA),
                           (g.shape[1], g.shape[0]), interpolation=cv2.INTER_NEAREST)
    if rng.random() < 0.85:
        gf = g.astype(np.float32)
        if rng.random() < 0.4:
            gf += rng.normal(0, rng.uniform(5, 30), gf.shape)
        b = np.where(gf < rng.uniform(90, 170), 0, 255).astype(np.uint8)
        before, after = crop_ink(g, 160), crop_ink(b, 128)
        # binarising a thin, tiny glyph can leave a few pixels: keep the grey one then
        if after.size and after.shape[0] >= 0.7 * before.shape[0] and after.shape[1] >= 0.5 * before.shape[1]:
            g = b
    return g


# --------------------------------------------------------------------------- sample makers


class Maker:
    def __init__(self, images, labels, rng):
        self.images = images  # training split only
        self.labels = labels
        self.rng = rng
        self.by = {d: np.flatnonzero(labels == d) for d in range(10)}
        self._font_cache: dict[tuple[str, str], np.ndarray] = {}

    def page(self, i):  # MNIST 28x28 (white on black) -> page-space 84x84, 0 = ink
        g = 255 - self.images[i]
        return np.clip(cv2.resize(g, (84, 84), interpolation=cv2.INTER_CUBIC), 0, 255).astype(np.uint8)

    def random_digit_page(self):
        return self.page(self.rng.integers(len(self.images)))

    def font(self, ch, font):
        key = (ch, font)
        if key not in self._font_cache:
            self._font_cache[key] = font_glyph(ch, font)
        return self._font_cache[key]

    def finish(self, g):
        g = lowres(g, self.rng)
        return normalize_glyph(g) if g.size else None

    def real(self, i, strong=True):
        rng = self.rng
        g = self.page(i)
        if rng.random() < 0.2:  # now and then the clean original
            return normalize_glyph(g)
        strong = strong and rng.random() < 0.75
        g = geom(g, rng) if strong else geom(g, rng, rot=4, shear=0.15, elastic=0.2)
        g = segmentation_jitter(g, rng, self.random_digit_page)
        return self.finish(g)

    def printed(self, d):
        rng = self.rng
        font = PRINT_FONTS[rng.integers(len(PRINT_FONTS))]
        ch = str(d) if rng.random() < 0.8 or font not in JP_FONTS else chr(0xFF10 + d)
        g = self.font(ch, font)
        g = geom(pad(g, 4), rng, rot=4, shear=0.2, sx=(0.7, 1.3), elastic=0.15, thick=0.4)
        g = segmentation_jitter(g, rng, self.random_digit_page)
        return self.finish(g)

    def slash(self):
        rng = self.rng
        if rng.random() < 0.25:
            font = PRINT_FONTS[rng.integers(len(PRINT_FONTS))]
            ch = "/" if font not in JP_FONTS or rng.random() < 0.6 else "／"
            g = self.font(ch, font)
        else:
            # a date separator leans 30-50 degrees; a '1' seldom does (training on
            # steeper ones only teaches the net to call slanted 1s '/')
            h = rng.uniform(40, 70)
            w = h * rng.uniform(0.55, 1.0)
            mid = np.array([w / 2, h / 2]) + rng.normal(0, 0.04 * h, 2)
            pts = np.array([[0, h], mid, [w, 0]]) + 12
            g = _polyline_img(pts, rng.uniform(3, 9), int(w + 24), int(h + 24), smooth=2)
        g = geom(pad(g, 4), rng, rot=6, shear=0.1, sx=(0.85, 1.2), elastic=0.3, thick=0.3)
        return self.finish(g)

    def dash(self):
        rng = self.rng
        if rng.random() < 0.3:
            font = PRINT_FONTS[rng.integers(len(PRINT_FONTS))]
            ch = rng.choice(["-", "ー", "－", "―", "‐"]) if font in JP_FONTS else "-"
            g = self.font(str(ch), font)
        else:
            g = draw_strokes("-", int(rng.integers(40, 70)), rng, thickness=rng.uniform(3, 10), jitter=0.04)
        g = geom(pad(g, 4), rng, rot=8, shear=0.2, sx=(0.6, 1.6), elastic=0.3, thick=0.3)
        return self.finish(g)

    def reject(self):
        rng = self.rng
        kind = rng.choice(
            ["letter", "stroke_letter", "kanji", "scribble", "tick", "cross", "pair", "fragment", "blob"],
            p=[0.18, 0.16, 0.1, 0.12, 0.14, 0.04, 0.16, 0.07, 0.03],
        )
        if kind == "letter":
            g = self.font(str(rng.choice(list(REJECT_LETTERS))), PRINT_FONTS[rng.integers(len(PRINT_FONTS))])
            g = geom(pad(g, 4), rng, rot=8, shear=0.3, elastic=0.5)
        elif kind == "kanji":
            g = self.font(str(rng.choice(list(REJECT_KANJI))), JP_FONTS[rng.integers(len(JP_FONTS))])
            g = geom(pad(g, 4), rng, rot=6, shear=0.2, elastic=0.5)
        elif kind == "stroke_letter":
            ch = str(rng.choice(list(REJECT_STROKE_LETTERS)))
            g = draw_strokes(ch, int(rng.integers(40, 70)), rng, thickness=rng.uniform(3, 8), jitter=0.05)
            g = geom(pad(g, 4), rng, rot=8, shear=0.3, elastic=0.5)
        elif kind == "scribble":
            n = int(rng.integers(5, 10))
            pts = rng.uniform(0, 1, (n, 2)) * [rng.uniform(30, 90), rng.uniform(30, 70)] + 10
            g = _polyline_img(pts, rng.uniform(3, 8), 110, 90)
            g = geom(g, rng, elastic=0.3)
        elif kind == "tick":  # check mark / レ
            w, h = rng.uniform(30, 70), rng.uniform(35, 65)
            p = np.array([[0, 0.55], [rng.uniform(0.25, 0.45), 1.0], [1.0, 0.0]])
            p += rng.normal(0, 0.04, p.shape)
            g = _polyline_img(p * [w, h] + 10, rng.uniform(3, 8), int(w + 20), int(h + 20), smooth=1)
            g = geom(g, rng, rot=20, elastic=0.3)
        elif kind == "cross":
            g = draw_strokes("X", int(rng.integers(30, 60)), rng, thickness=rng.uniform(3, 8))
            g = geom(pad(g, 4), rng, rot=15)
        elif kind == "pair":  # two touching / overlapping digits
            a, b = (crop_ink(geom(self.random_digit_page(), rng, elastic=0.2), 128) for _ in range(2))
            if a.size == 0 or b.size == 0:
                return None
            h = max(a.shape[0], b.shape[0])
            b = cv2.resize(b, (max(2, round(b.shape[1] * h / b.shape[0])), h))
            a = cv2.resize(a, (max(2, round(a.shape[1] * h / a.shape[0])), h))
            ov = int(rng.uniform(-0.05, 0.15) * min(a.shape[1], b.shape[1]))
            W = a.shape[1] + b.shape[1] - ov
            g = np.full((h, W), 255, np.uint8)
            g[:, : a.shape[1]] = a
            x0 = a.shape[1] - ov
            g[:, x0:] = np.minimum(g[:, x0:], b)
        elif kind == "fragment":  # a piece of a digit, as over-segmentation produces
            while True:
                i = rng.integers(len(self.images))
                if self.labels[i] not in (1, 7):
                    break
            g = crop_ink(geom(self.page(i), rng, elastic=0.3), 128)
            if g.size == 0 or g.shape[1] < 8:
                return None
            f = rng.uniform(0.3, 0.55)
            k = max(2, int(g.shape[1] * f))
            g = g[:, :k] if rng.random() < 0.5 else g[:, -k:]
            if crop_ink(g, 128).size == 0:
                return None
        else:  # blob
            g = np.full((90, 90), 255, np.uint8)
            cv2.ellipse(g, (45, 45), (int(rng.integers(10, 35)), int(rng.integers(10, 35))),
                        float(rng.uniform(0, 180)), 0, 360, 0, -1)
            g = geom(g, rng, elastic=1.0)
        return self.finish(g)

    def epoch(self, counts):
        """One epoch of samples: (x float32 [N,28,28], y int64 [N])."""
        xs, ys = [], []
        for i in range(len(self.images)):
            xs.append(self.real(i))
            ys.append(int(self.labels[i]))
        for _ in range(counts["printed"]):
            d = int(self.rng.integers(10))
            xs.append(self.printed(d))
            ys.append(d)
        for _ in range(counts["slash"]):
            xs.append(self.slash())
            ys.append(CI["/"])
        for _ in range(counts["dash"]):
            xs.append(self.dash())
            ys.append(CI["-"])
        for _ in range(counts["reject"]):
            xs.append(self.reject())
            ys.append(CI["?"])
        keep = [k for k, x in enumerate(xs) if x is not None and x.max() > 0]
        return np.stack([xs[k] for k in keep]).astype(np.float32), np.array([ys[k] for k in keep], np.int64)


def _polyline_img(pts, thickness, w, h, smooth=2):
    from faxflow.samples.handwriting import _chaikin

    up = 4
    c = np.zeros((int(h) * up, int(w) * up), np.uint8)
    p = _chaikin(np.asarray(pts, float), smooth) * up
    cv2.polylines(c, [np.round(p * 16).astype(np.int32)], False, 255,
                  thickness=max(1, int(thickness * up)), lineType=cv2.LINE_AA, shift=4)
    return (255 - cv2.resize(c, (int(w), int(h)), interpolation=cv2.INTER_AREA)).astype(np.uint8)


def degrade_val(images, seed):
    """The validation digits as a FAX would deliver them (fixed seed): for a robustness figure."""
    rng = np.random.default_rng(seed)
    out = []
    for img in images:
        g = np.clip(cv2.resize(255 - img, (84, 84), interpolation=cv2.INTER_CUBIC), 0, 255).astype(np.uint8)
        g = crop_ink(g, 160)
        th = rng.uniform(11, 16)
        s = th / g.shape[0]
        g = cv2.resize(pad(g, 3), None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        g = np.where(g < 128, 0, 255).astype(np.uint8)
        out.append(normalize_glyph(g))
    return np.stack(out)


# --------------------------------------------------------------------------- the network


def build_net(torch, nn):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(1, 32, 5, padding=2)
            self.b1 = nn.BatchNorm2d(32)
            self.c2 = nn.Conv2d(32, 64, 3, padding=1)
            self.b2 = nn.BatchNorm2d(64)
            self.c3 = nn.Conv2d(64, 128, 3, padding=1)
            self.b3 = nn.BatchNorm2d(128)
            self.f1 = nn.Linear(128 * 3 * 3, 128)
            self.f2 = nn.Linear(128, len(CLASSES))
            self.drop = nn.Dropout(0.35)
            self.pool = nn.MaxPool2d(2)

        def forward(self, x):
            x = self.pool(torch.relu(self.b1(self.c1(x))))
            x = self.pool(torch.relu(self.b2(self.c2(x))))
            x = self.pool(torch.relu(self.b3(self.c3(x))))
            x = self.drop(torch.relu(self.f1(x.flatten(1))))
            return self.f2(x)

    return Net()


def export_net(net, prefix):
    """Fold batch-norm into the convolutions; NumPy layout (see digits.DigitModel)."""
    arrays, layers = {}, []
    for c, b in (("c1", "b1"), ("c2", "b2"), ("c3", "b3")):
        conv, bn = getattr(net, c), getattr(net, b)
        w = conv.weight.detach().double().numpy()  # [O, C, k, k]
        cb = conv.bias.detach().double().numpy()
        g = bn.weight.detach().double().numpy()
        beta = bn.bias.detach().double().numpy()
        mu = bn.running_mean.double().numpy()
        var = bn.running_var.double().numpy()
        s = g / np.sqrt(var + bn.eps)
        wf = (w * s[:, None, None, None]).reshape(w.shape[0], -1).T  # [C*k*k, O]
        bf = (cb - mu) * s + beta
        arrays[f"{prefix}.{c}.w"] = wf.astype(np.float16)
        arrays[f"{prefix}.{c}.b"] = bf.astype(np.float32)
        layers += [{"op": "conv", "k": int(w.shape[2]), "w": f"{prefix}.{c}.w", "b": f"{prefix}.{c}.b"},
                   {"op": "pool"}]
    layers.append({"op": "flatten"})
    w1 = net.f1.weight.detach().double().numpy()  # [128, C*H*W] in (C, H, W) order
    w1 = w1.reshape(w1.shape[0], 128, 3, 3).transpose(0, 2, 3, 1).reshape(w1.shape[0], -1).T
    arrays[f"{prefix}.f1.w"] = w1.astype(np.float16)
    arrays[f"{prefix}.f1.b"] = net.f1.bias.detach().numpy().astype(np.float32)
    arrays[f"{prefix}.f2.w"] = net.f2.weight.detach().double().numpy().T.astype(np.float16)
    arrays[f"{prefix}.f2.b"] = net.f2.bias.detach().numpy().astype(np.float32)
    layers += [{"op": "dense", "w": f"{prefix}.f1.w", "b": f"{prefix}.f1.b", "relu": True},
               {"op": "dense", "w": f"{prefix}.f2.w", "b": f"{prefix}.f2.b", "relu": False}]
    return arrays, layers


def train_one(args, k, tr_images, tr_labels, val_x, val_y, mean, std, log):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    seed = args.seed + 1000 * k
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = build_net(torch, nn)
    maker = Maker(tr_images, tr_labels, rng)
    counts = {"printed": args.printed, "slash": args.slash, "dash": args.dash, "reject": args.reject}
    steps_per_epoch = (len(tr_images) + sum(counts.values())) // args.batch + 1
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=args.wd)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=args.lr, epochs=args.epochs, steps_per_epoch=steps_per_epoch, pct_start=0.2
    )
    vx = torch.from_numpy((val_x - mean) / std)[:, None]
    for ep in range(args.epochs):
        t0 = time.time()
        x, y = maker.epoch(counts)
        t1 = time.time()
        xt = torch.from_numpy((x - mean) / std)[:, None]
        yt = torch.from_numpy(y)
        perm = torch.from_numpy(rng.permutation(len(x)))
        net.train()
        tot = 0.0
        for s in range(0, len(x), args.batch):
            idx = perm[s : s + args.batch]
            if len(idx) < 2:
                continue
            opt.zero_grad()
            loss = F.cross_entropy(net(xt[idx]), yt[idx], label_smoothing=args.smoothing)
            loss.backward()
            opt.step()
            if sched.last_epoch < sched.total_steps - 1:
                sched.step()
            tot += float(loss.detach()) * len(idx)
        net.eval()
        with torch.no_grad():
            pv = net(vx).argmax(1).numpy()
        log(f"net {k} epoch {ep + 1:2d}/{args.epochs}: loss {tot / len(x):.4f} "
            f"val {np.mean(pv == val_y) * 100:.2f}%  (aug {t1 - t0:.1f}s, train {time.time() - t1:.1f}s)")
    return net


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--data", required=True, type=Path, help="digits-train.npz (images, labels)")
    ap.add_argument("--out", required=True, type=Path, help="weights file to write (.npz)")
    ap.add_argument("--nets", type=int, default=2, help="ensemble size")
    ap.add_argument("--epochs", type=int, default=36)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--wd", type=float, default=5e-4)
    ap.add_argument("--smoothing", type=float, default=0.02)
    ap.add_argument("--printed", type=int, default=1200, help="font digits per epoch")
    ap.add_argument("--slash", type=int, default=400)
    ap.add_argument("--dash", type=int, default=300)
    ap.add_argument("--reject", type=int, default=700)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1: OpenMP spinning on a busy 2-core machine is 10x slower)")
    args = ap.parse_args(argv)

    import torch

    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(1)
    cv2.setRNGSeed(args.seed)

    def log(msg):
        print(msg, flush=True)

    started = time.time()
    with np.load(args.data, allow_pickle=False) as z:
        images, labels = z["images"], z["labels"].astype(np.int64)
    data_sha = hashlib.sha256(images.tobytes() + labels.astype(np.uint8).tobytes()).hexdigest()
    val_idx = validation_indices(labels)
    tr_idx = training_indices(labels)
    assert not set(val_idx.tolist()) & set(tr_idx.tolist())
    log(f"{len(images)} images: {len(tr_idx)} for training, {len(val_idx)} held out for validation "
        f"(seed {SPLIT_SEED})")
    val_x = np.stack([normalize_glyph(255 - images[i]) for i in val_idx])
    val_y = labels[val_idx]
    tr_x = np.stack([normalize_glyph(255 - images[i]) for i in tr_idx])
    mean, std = float(tr_x.mean()), float(tr_x.std())

    arrays, nets = {}, []
    for k in range(args.nets):
        net = train_one(args, k, images[tr_idx], labels[tr_idx], val_x, val_y, mean, std, log)
        a, layers = export_net(net, f"n{k}")
        arrays.update(a)
        nets.append(layers)

    meta = {
        "format": 1,
        "classes": list(CLASSES),
        "reject_class": "?",
        "input_size": 28,
        "glyph_box": 20,
        "input": "normalize_glyph(crop): ink bbox -> fit 20x20 keeping aspect -> centre of mass at "
                 "the centre of 28x28; white ink on black in [0,1]; then (x - input_mean) / input_std",
        # the reject class is over-represented in training (one class, many kinds of
        # non-digit); at run time its probability is scaled so its prior equals a digit's
        "prior_correction": [1.0] * 12 + [((len(tr_idx) + args.printed) / 10) / args.reject],
        "input_mean": mean,
        "input_std": std,
        "nets": nets,
        "split": {
            "seed": SPLIT_SEED,
            "per_class": VAL_PER_CLASS,
            "rule": SPLIT_RULE,
            "n_validation": int(len(val_idx)),
            "n_training": int(len(tr_idx)),
            "validation_sha256": hashlib.sha256(val_idx.astype(np.int64).tobytes()).hexdigest(),
            "data_sha256": data_sha,
        },
        "training": {k: v for k, v in vars(args).items() if k not in ("data", "out")},
        "torch": torch.__version__,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, meta=np.array(json.dumps(meta)), **arrays)

    # measure with the NumPy inference that faxflow uses, on the stored (float16) weights
    model = DigitModel(tmp)
    p = model.classify(val_x)
    acc = float(np.mean(p.argmax(1) == val_y))
    acc_digits = float(np.mean(p[:, :10].argmax(1) == val_y))
    # as the engine reads a numeric field: '/' is not allowed there and counts as '1',
    # the reject class stays (a rejected digit is flagged, not misread)
    pn = p.copy()
    pn[:, CI["1"]] += pn[:, CI["/"]]
    pn[:, [CI["/"], CI["-"]]] = 0
    acc_numeric = float(np.mean(pn.argmax(1) == val_y))
    pd = model.classify(degrade_val(images[val_idx], args.seed))
    acc_deg = float(np.mean(pd.argmax(1) == val_y))
    per_net = []
    for layers in nets:
        one = DigitModel.__new__(DigitModel)
        one.__dict__.update(model.__dict__)
        one._nets = [layers]
        per_net.append(float(np.mean(one.classify(val_x).argmax(1) == val_y)))
    meta["validation"] = {
        "accuracy": acc,
        "accuracy_digits_only": acc_digits,
        "accuracy_numeric_field": acc_numeric,
        "accuracy_fax_degraded": acc_deg,
        "accuracy_per_net": per_net,
        "errors": [
            {"index": int(val_idx[i]), "label": int(val_y[i]), "read": model.classes[int(p[i].argmax())],
             "p": round(float(p[i].max()), 3)}
            for i in np.flatnonzero(p.argmax(1) != val_y)
        ],
    }
    np.savez_compressed(args.out, meta=np.array(json.dumps(meta)), **arrays)
    tmp.unlink()
    size = args.out.stat().st_size
    log(f"validation accuracy {acc * 100:.2f}% (numeric field {acc_numeric * 100:.2f}%, "
        f"digits only {acc_digits * 100:.2f}%, FAX-degraded "
        f"{acc_deg * 100:.2f}%, per net {[round(a * 100, 2) for a in per_net]})")
    log(f"wrote {args.out} ({size / 1024:.0f} KiB) in {time.time() - started:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
