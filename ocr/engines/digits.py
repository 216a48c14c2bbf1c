"""Handwritten-digit classifier: pure NumPy inference (+ OpenCV for resizing).

The weights are built by ``scripts/train_digits.py`` (PyTorch, only at build time)
and shipped as ``ocr/engines/models/digits.npz``: one array per layer and a JSON
string ``meta`` (classes, input normalisation, architecture, data split, accuracy).

Input convention (MNIST style): 28x28 float in [0, 1] (or uint8 0..255), *white ink
on black*, the glyph scaled to fit 20x20 keeping its aspect ratio, its centre of
mass at the centre. ``normalize_glyph`` makes such an input from a crop of a page
(0 = ink, 255 = paper, any size); training uses the very same function, so what
the network saw in training is what it sees at run time.

The data split is defined here (``validation_indices``) because three places must
agree on it: the training script (never trains on it), the tests (measure accuracy
on it) and the sample generator (composes handwritten test numbers only from it,
i.e. from writers the model has not seen).
"""

from __future__ import annotations

import json
import threading
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

MODEL_PATH = Path(__file__).parent / "models" / "digits.npz"

#: Seed and size of the fixed, stratified validation split of digits-train.npz.
SPLIT_SEED = 20261123
VAL_PER_CLASS = 100
SPLIT_RULE = (
    "for c in 0..9 (ascending): rng = numpy.random.default_rng(seed + c); "
    "take the first per_class entries of rng.permutation(flatnonzero(labels == c)); "
    "validation = sorted union; training = all other indices"
)

#: Default class list (the model file's ``meta["classes"]`` is authoritative).
#: "?" is the reject class: letters, kanji, ticks, scribbles, two touching digits,
#: fragments of a digit.
DEFAULT_CLASSES = ("0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "/", "-", "?")
REJECT = "?"


def validation_indices(
    labels: np.ndarray, seed: int = SPLIT_SEED, per_class: int = VAL_PER_CLASS
) -> np.ndarray:
    """Indices (sorted, int64) of the validation split: ``per_class`` of each digit.

    Deterministic for a given ``labels`` array (see ``SPLIT_RULE``). These images
    are never trained on.
    """
    labels = np.asarray(labels)
    chosen = []
    for c in range(10):
        idx = np.flatnonzero(labels == c)
        rng = np.random.default_rng(seed + c)
        chosen.append(rng.permutation(idx)[: min(per_class, len(idx))])
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def training_indices(
    labels: np.ndarray, seed: int = SPLIT_SEED, per_class: int = VAL_PER_CLASS
) -> np.ndarray:
    """All indices not in ``validation_indices`` (sorted)."""
    mask = np.ones(len(labels), dtype=bool)
    mask[validation_indices(labels, seed, per_class)] = False
    return np.flatnonzero(mask).astype(np.int64)


# --------------------------------------------------------------------------- preprocessing


def normalize_glyph(crop: np.ndarray, box: int = 20, size: int = 28) -> np.ndarray:
    """A glyph crop (uint8, 0 = ink, 255 = paper, any size) -> MNIST-style input.

    Bounding box of the ink -> scaled to fit ``box`` x ``box`` keeping the aspect
    ratio -> placed in ``size`` x ``size`` with its centre of mass in the middle.
    Returns float32 [size, size] in [0, 1], white ink on black. An empty crop gives
    an all-zero image.
    """
    ink = 255.0 - np.asarray(crop, dtype=np.float32)
    ys, xs = np.nonzero(ink > 40)
    out = np.zeros((size, size), np.float32)
    if len(xs) == 0:
        return out
    ink = ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    h, w = ink.shape
    s = box / max(h, w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    g = cv2.resize(ink, (nw, nh), interpolation=interp) / 255.0
    g = np.clip(g, 0.0, 1.0)
    tot = g.sum()
    if tot <= 0:
        return out
    cy = (g.sum(axis=1) * np.arange(nh)).sum() / tot
    cx = (g.sum(axis=0) * np.arange(nw)).sum() / tot
    oy = int(round(size / 2 - 0.5 - cy))
    ox = int(round(size / 2 - 0.5 - cx))
    # keep the whole glyph inside the canvas
    oy = min(max(oy, 0), size - nh)
    ox = min(max(ox, 0), size - nw)
    out[oy : oy + nh, ox : ox + nw] = g
    return out


def normalize_glyphs(crops: list[np.ndarray]) -> np.ndarray:
    """``normalize_glyph`` over a list -> float32 [N, 28, 28]."""
    if not crops:
        return np.zeros((0, 28, 28), np.float32)
    return np.stack([normalize_glyph(c) for c in crops])


# --------------------------------------------------------------------------- the network


def _conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
    """'same' convolution + ReLU, NHWC; ``w`` is [C*k*k, O] in (C, ky, kx) order."""
    n, h, wd, c = x.shape
    p = k // 2
    xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    cols = sliding_window_view(xp, (k, k), axis=(1, 2)).reshape(n * h * wd, c * k * k)
    y = cols @ w
    y += b
    np.maximum(y, 0, out=y)
    return y.reshape(n, h, wd, -1)


def _pool(x: np.ndarray) -> np.ndarray:
    h2, w2 = x.shape[1] // 2, x.shape[2] // 2
    a = np.maximum(x[:, 0 : 2 * h2 : 2], x[:, 1 : 2 * h2 : 2])
    return np.maximum(a[:, :, 0 : 2 * w2 : 2], a[:, :, 1 : 2 * w2 : 2])


class _OneBlasThread:
    """Run NumPy's BLAS on one thread inside the block (restored after).

    Our matrices are small; OpenBLAS's worker threads then cost far more than they
    give, and on a busy 2-core machine (Tesseract, other workers) a 10-glyph batch
    took 35 ms instead of 3 ms. Parallelism comes from worker processes instead.
    Finds OpenBLAS as loaded by NumPy (like threadpoolctl); does nothing if it can't.
    """

    _lib = None
    _get = _set = None
    _tried = False

    @classmethod
    def _find(cls) -> None:
        cls._tried = True
        try:
            import ctypes
            import glob

            libdir = Path(np.__file__).parent.parent / "numpy.libs"
            paths = sorted(glob.glob(str(libdir / "lib*openblas*.so*")))
            if not paths:
                import numpy._core._multiarray_umath as mu  # OpenBLAS linked in, or a system one

                paths = [mu.__file__]
            lib = ctypes.CDLL(paths[0])
            for getn, setn in (("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
                               ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
                               ("openblas_get_num_threads", "openblas_set_num_threads")):
                if hasattr(lib, getn) and hasattr(lib, setn):
                    cls._lib, cls._get, cls._set = lib, getattr(lib, getn), getattr(lib, setn)
                    cls._get.restype = ctypes.c_int
                    cls._set.argtypes = [ctypes.c_int]
                    return
        except Exception:  # pragma: no cover - another BLAS: leave it alone
            cls._lib = None

    def __enter__(self):
        if not self._tried:
            self._find()
        self.prev = None
        if self._lib is not None:
            self.prev = self._get()
            if self.prev != 1:
                self._set(1)
        return self

    def __exit__(self, *exc):
        if self.prev not in (None, 1):
            self._set(self.prev)
        return False


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class DigitModel:
    """The classifier loaded from a weights file (an ensemble of small CNNs).

    ``meta["nets"]`` lists each net's layers, e.g.
    ``[{"op": "conv", "k": 5, "w": "n0.c1.w", "b": "n0.c1.b"}, {"op": "pool"},
    {"op": "flatten"}, {"op": "dense", "w": ..., "b": ..., "relu": true}, ...]``.
    Batch-norm is folded into the convolutions at export; dense weights are stored
    in NHWC-flatten order. The ensemble output is the mean of the nets' softmax, for
    glyphs the first net is unsure of (top probability < ``cascade``); the others get
    the first net's alone (half the work on clean pages, same accuracy).
    """

    def __init__(self, path: Path | str = MODEL_PATH):
        self.path = Path(path)
        with np.load(self.path, allow_pickle=False) as z:
            self.meta = json.loads(str(z["meta"]))
            self._arrays = {k: z[k].astype(np.float32) for k in z.files if k != "meta"}
        self.classes: tuple[str, ...] = tuple(self.meta["classes"])
        self.mean = float(self.meta.get("input_mean", 0.0))
        self.std = float(self.meta.get("input_std", 1.0))
        self._nets = self.meta["nets"]
        #: glyphs the first net gives at least this probability skip the rest of the ensemble
        self.cascade = float(self.meta.get("cascade", 0.995))
        pc = self.meta.get("prior_correction")
        self.prior = np.asarray(pc, np.float32) if pc else None

    @property
    def reject_index(self) -> int | None:
        return self.classes.index(REJECT) if REJECT in self.classes else None

    def index(self, ch: str) -> int:
        return self.classes.index(ch)

    def _forward(self, layers: list[dict], x: np.ndarray) -> np.ndarray:
        a = self._arrays
        for layer in layers:
            op = layer["op"]
            if op == "conv":
                x = _conv(x, a[layer["w"]], a[layer["b"]], int(layer["k"]))
            elif op == "pool":
                x = _pool(x)
            elif op == "flatten":
                x = x.reshape(len(x), -1)
            elif op == "dense":
                x = x @ a[layer["w"]] + a[layer["b"]]
                if layer.get("relu"):
                    np.maximum(x, 0, out=x)
            else:  # pragma: no cover - a file from a newer trainer
                raise ValueError(f"{self.path}: unknown layer op {op!r}")
        return x

    def classify(self, glyphs: np.ndarray, batch: int = 256) -> np.ndarray:
        """MNIST-style glyphs [N, 28, 28] (float 0..1 or uint8) -> probabilities [N, C]."""
        g = np.asarray(glyphs)
        if g.ndim == 2:
            g = g[None]
        g = g.astype(np.float32) / 255.0 if g.dtype == np.uint8 else g.astype(np.float32)
        n = len(g)
        out = np.zeros((n, len(self.classes)), np.float32)
        if n == 0:
            return out
        x = ((g - self.mean) / self.std)[..., None]
        with _OneBlasThread():
            for s in range(0, n, batch):
                xb = x[s : s + batch]
                first = _softmax(self._forward(self._nets[0], xb))
                # cascade: the other nets only look at what the first is unsure of
                unsure = np.flatnonzero(first.max(axis=1) < self.cascade)
                if len(self._nets) > 1 and len(unsure):
                    acc = first[unsure].copy()
                    for net in self._nets[1:]:
                        acc += _softmax(self._forward(net, xb[unsure]))
                    first[unsure] = acc / len(self._nets)
                out[s : s + batch] = first
        if self.prior is not None:  # training class frequencies -> run-time priors
            out *= self.prior
            out /= out.sum(axis=1, keepdims=True)
        return out

    def predict(self, glyphs: np.ndarray) -> tuple[list[str], np.ndarray]:
        """Top-1 class and its probability for each glyph."""
        p = self.classify(glyphs)
        top = p.argmax(axis=1)
        return [self.classes[i] for i in top], p[np.arange(len(p)), top]


_lock = threading.Lock()


@lru_cache(maxsize=4)
def _load(path: str) -> DigitModel:
    return DigitModel(path)


def load_model(path: Path | str | None = None) -> DigitModel:
    """The model from ``path`` (default: the shipped weights), loaded once per process."""
    with _lock:
        return _load(str(Path(path) if path else MODEL_PATH))


def classify(glyphs: np.ndarray) -> np.ndarray:
    """MNIST-style glyphs [N, 28, 28] -> class probabilities [N, C] (shipped model)."""
    return load_model().classify(glyphs)


def classes() -> tuple[str, ...]:
    """The class labels of the shipped model, in the order of ``classify``'s columns."""
    return load_model().classes
