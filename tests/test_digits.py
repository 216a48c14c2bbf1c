"""The digit model: shipped weights, the held-out split, NumPy inference."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from faxflow.ocr.engines import digits
from faxflow.ocr.engines.digits import (
    MODEL_PATH,
    SPLIT_SEED,
    DigitModel,
    load_model,
    normalize_glyph,
    training_indices,
    validation_indices,
)

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "handwritten-digits" / "digits-train.npz"
needs_data = pytest.mark.skipif(
    not DATA.exists(), reason=f"handwritten digit data not found at {DATA} (shared/ is not beside the repo)"
)


@pytest.fixture(scope="module")
def data():
    with np.load(DATA, allow_pickle=False) as z:
        return z["images"], z["labels"]


def test_weights_file_is_small_and_described():
    assert MODEL_PATH.exists(), "run `make model` to build ocr/engines/models/digits.npz"
    assert MODEL_PATH.stat().st_size < 3 * 1024 * 1024
    m = load_model()
    assert m.classes[:10] == tuple("0123456789") and "?" in m.classes
    assert m.meta["split"]["seed"] == SPLIT_SEED
    assert m.meta["input_size"] == 28
    assert m.meta["validation"]["accuracy"] >= 0.99 or m.meta["validation"]["accuracy_numeric_field"] >= 0.99


def test_split_is_stratified_disjoint_and_deterministic():
    labels = np.repeat(np.arange(10), 150)
    rng = np.random.default_rng(0)
    labels = labels[rng.permutation(len(labels))]
    v = validation_indices(labels)
    t = training_indices(labels)
    assert len(v) == 1000 and np.bincount(labels[v]).tolist() == [100] * 10
    assert not set(v) & set(t) and len(v) + len(t) == len(labels)
    assert np.array_equal(v, validation_indices(labels.copy()))


@needs_data
def test_model_was_built_on_this_split(data):
    _, labels = data
    v = validation_indices(labels)
    assert hashlib.sha256(v.astype(np.int64).tobytes()).hexdigest() == load_model().meta["split"]["validation_sha256"]


@needs_data
def test_validation_accuracy_at_least_99_percent(data):
    images, labels = data
    v = validation_indices(labels)
    m = load_model()
    p = m.classify(np.stack([normalize_glyph(255 - images[i]) for i in v]))
    # as a numeric field reads it: '/' counts as a slanted '1'; '?' (reject) stays wrong
    p[:, m.index("1")] += p[:, m.index("/")]
    p[:, [m.index("/"), m.index("-")]] = 0
    acc = float(np.mean(p.argmax(1) == labels[v]))
    assert acc >= 0.99, f"validation accuracy {acc:.4f}"


def test_inference_is_deterministic_and_batch_independent():
    rng = np.random.default_rng(3)
    x = (rng.random((7, 28, 28)) > 0.8).astype(np.float32)
    m = load_model()
    a = m.classify(x)
    b = m.classify(x)
    c = np.concatenate([m.classify(x[i : i + 1]) for i in range(len(x))])
    assert np.array_equal(a, b)
    np.testing.assert_allclose(a, c, atol=1e-5)
    np.testing.assert_allclose(a.sum(axis=1), 1.0, atol=1e-5)
    u8 = (x * 255).astype(np.uint8)
    np.testing.assert_allclose(m.classify(u8), a, atol=1e-5)
    assert digits.classify(x).shape == (7, len(m.classes))


def test_normalize_glyph_fits_20px_and_centres_mass():
    crop = np.full((90, 30), 255, np.uint8)
    crop[10:80, 12:18] = 0  # a tall bar, any size
    g = normalize_glyph(crop)
    assert g.shape == (28, 28) and g.dtype == np.float32
    ys, xs = np.nonzero(g > 0.1)
    assert ys.max() - ys.min() + 1 == 20
    cy = (g.sum(1) * np.arange(28)).sum() / g.sum()
    cx = (g.sum(0) * np.arange(28)).sum() / g.sum()
    assert abs(cy - 13.5) <= 1 and abs(cx - 13.5) <= 1
    assert normalize_glyph(np.full((10, 10), 255, np.uint8)).max() == 0


def test_a_clearly_drawn_digit_is_read():
    import cv2

    img = np.full((60, 60), 255, np.uint8)
    cv2.line(img, (30, 8), (30, 52), 0, 5)  # '1'
    m = load_model()
    cls, p = m.predict(normalize_glyph(img)[None])
    assert cls[0] in ("1", "/") and p[0] > 0.5


def test_loading_another_file(tmp_path):
    m = DigitModel(MODEL_PATH)
    assert m.classes == load_model().classes
