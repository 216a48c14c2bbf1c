#!/usr/bin/env python
"""Build the kana word list (templates/data/kana.txt) from Tesseract's own Japanese
dictionaries.

    make lexicon
    # = .venv/bin/python scripts/build_lexicon.py --out templates/data/kana.txt

The word lists inside ``jpn.traineddata`` and ``Japanese.traineddata`` (tessdata_fast,
Apache-2.0, installed by scripts/install-system-deps.sh) are unpacked with Tesseract's
``combine_tessdata -u`` and ``dawg2wordlist``; every entry written in katakana only or
in hiragana only (and the long-vowel mark) with at least two characters is kept, sorted. Deterministic
for the same traineddata files. ``faxflow.templates.kana`` reads the result to tell
a kana word whose voicing marks a FAX wiped out (サンブル for サンプル, ねし for ねじ).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

KANA_WORD = re.compile(r"[ァ-ヴー]{2,}|[ぁ-ゖー]{2,}")
SOURCES = ("jpn", "Japanese")


def tessdata_dir() -> Path:
    for d in (Path("/usr/share/tesseract-ocr/5/tessdata"), Path("/usr/share/tesseract-ocr/4.00/tessdata")):
        if (d / "jpn.traineddata").exists():
            return d
    sys.exit("jpn.traineddata not found: run 'make setup' first (installs tesseract-ocr-jpn)")


def words_of(traineddata: Path, work: Path) -> list[str]:
    prefix = work / (traineddata.stem + ".")
    subprocess.run(["combine_tessdata", "-u", str(traineddata), str(prefix)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = work / (traineddata.stem + ".words")
    subprocess.run(["dawg2wordlist", f"{prefix}lstm-unicharset", f"{prefix}lstm-word-dawg", str(out)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return out.read_text(encoding="utf-8").split()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "templates/data/kana.txt")
    args = ap.parse_args()
    src = tessdata_dir()
    kept: set[str] = set()
    with tempfile.TemporaryDirectory() as tmp:
        for name in SOURCES:
            path = src / f"{name}.traineddata"
            if path.exists():
                kept |= {w for w in words_of(path, Path(tmp)) if KANA_WORD.fullmatch(w)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(sorted(kept)) + "\n", encoding="utf-8")
    print(f"{len(kept)} kana words -> {args.out}")


if __name__ == "__main__":
    main()
