"""Kana words whose voicing marks a FAX wiped out or changed.

At 200 x 100 dpi the two dots of a dakuten (ブ) and the ring of a handakuten (プ) are a
few pixels: they vanish (ボ -> ホ) or turn into each other (プ -> ブ), and both of
Tesseract's models then agree on the wrong kana - the commonest silent error left in
free text. Tesseract's own Japanese dictionary (its katakana-only and hiragana-only
words, unpacked by ``scripts/build_lexicon.py`` into ``data/kana.txt``) tells which
spelling is a word.

``voicing_fix(run)`` looks at one katakana run: when changing the voicing of exactly one
kana (ハ/バ/パ, カ/ガ, サ/ザ, タ/ダ, ウ/ヴ) makes it split into fewer dictionary words
than the reading does, and exactly one such change is best, that spelling is returned
(サンブル -> サンプル, プラケット -> ブラケット). A hiragana run (okurigana and short
words between kanji) is held to more: the change must make the whole run one dictionary
word (タッピンねし -> ねじ). The caller shows it and flags the value (``kana_voicing``).
Where the dictionary cannot tell two spellings apart (ボルト and ポルト, ピン and ビン
are both words), the trade's own words (``data/parts_kana.txt``, hand-made, meant to
be added to) decide: ポルト -> ボルト. A reading that is a word of the trade is left
alone. A katakana run no dictionary words spell (ミルンート), one
that several voicing changes would improve (ヒン), and a small ゃゅょ where Japanese
spelling has none (ウュス, スペーサーゅ) are not changed but noted, and the value is
flagged (``kana_doubtful``).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from pathlib import Path

__all__ = ["voicing_fix", "fix_text"]

LEXICON = Path(__file__).parent / "data" / "kana.txt"
TRADE = Path(__file__).parent / "data" / "parts_kana.txt"
TRADE_COST = 0.6  # a word of the trade beats an ordinary word (ボルト over ポルト)
KANA_RUN = re.compile(r"[ァ-ヴー]{2,}|[ぁ-ゖ]{2,}")
_MAX_WORD = 12
_UNKNOWN = 3  # cost of a kana no dictionary word covers (a word costs 1)

_ROWS = ["ハバパ", "ヒビピ", "フブプ", "ヘベペ", "ホボポ", "カガ", "キギ", "クグ", "ケゲ", "コゴ",
         "サザ", "シジ", "スズ", "セゼ", "ソゾ", "タダ", "チヂ", "ツヅ", "テデ", "トド", "ウヴ"]
_TWINS = {ch: tuple(c for c in row if c != ch) for row in _ROWS for ch in row}
# the same rows in hiragana (は/ば/ぱ ...)
_TWINS.update({chr(ord(ch) - 0x60): tuple(chr(ord(c) - 0x60) for c in twins)
               for ch, twins in list(_TWINS.items()) if ch != "ヴ" and "ヴ" not in twins})


@lru_cache(maxsize=1)
def _words() -> frozenset[str]:
    try:
        return frozenset(LEXICON.read_text(encoding="utf-8").split())
    except OSError:
        return frozenset()


@lru_cache(maxsize=1)
def _trade_words() -> frozenset[str]:
    try:
        lines = TRADE.read_text(encoding="utf-8").splitlines()
    except OSError:
        return frozenset()
    return frozenset(w.strip() for w in lines if w.strip() and not w.startswith("#"))


@lru_cache(maxsize=4096)
def _cost(run: str) -> float:
    """Cheapest split of ``run`` into pieces: a word of the trade (``data/parts_kana.txt``)
    costs TRADE_COST, another dictionary word 1, any other kana 3."""
    words, trade = _words(), _trade_words()
    best = [0.0] + [1e9] * len(run)
    for i in range(1, len(run) + 1):
        best[i] = best[i - 1] + _UNKNOWN
        for j in range(max(0, i - _MAX_WORD), i - 1):
            piece = run[j:i]
            if piece in trade:
                best[i] = min(best[i], best[j] + TRADE_COST)
            elif piece in words:
                best[i] = min(best[i], best[j] + 1)
    return best[len(run)]


def voicing_fix(run: str) -> str | None:
    """The one spelling of katakana ``run`` with a single voicing mark changed that the
    dictionary likes better than the reading, or None."""
    if not _words() or len(run) < 2:
        return None
    here = _cost(run)
    if here <= TRADE_COST:
        return None  # a word of the trade as read
    scored = [(_cost(cand), cand) for cand in _twins_of(run)]
    if not scored:
        return None
    low = min(c for c, _ in scored)
    winners = [cand for c, cand in scored if c == low]
    if "ぁ" <= run[0] <= "ゖ" and low > 1:
        return None  # hiragana: only a change that makes the run one word
    return winners[0] if low < here and len(winners) == 1 else None


# small ya/yu/yo only follow an i-column kana (キャ, シュ, ...; テュ, フョ, ヴュ in loanwords)
_SMALL_Y = re.compile(r"(?<![きしちにひみりぎじぢびぴキシチニヒミリギジヂビピテデフヴ])[ゃゅょャュョ]")


def _doubtful(run: str) -> bool:
    """A katakana run that is no spelling of dictionary words (a kana no word covers:
    ミルンート, ウュス), or that several voicing changes would make better."""
    if "ぁ" <= run[0] <= "ゖ" or not _words():
        return False
    here = _cost(run)
    if here >= _UNKNOWN:
        return True
    return len({cand for cand in _twins_of(run) if _cost(cand) < here}) > 1


def _twins_of(run: str) -> list[str]:
    """``run`` with the voicing of one kana changed, every way it can be."""
    return [run[:i] + twin + run[i + 1:] for i, ch in enumerate(run) for twin in _TWINS.get(ch, ())]


def fix_text(text: str) -> tuple[str, list[str]]:
    """``text`` with every kana run's voicing fixed where ``voicing_fix`` says so, and a
    note per change (``kana:サンブル->サンプル``); a note ``kana?:<run>`` for a run that
    is doubtful but has no one fix (``_doubtful``), or a small ゃゅょ where Japanese
    spelling allows none (``スペーサーゅ``: a φ read as ゅ)."""
    notes: list[str] = []

    def sub(m: re.Match) -> str:
        fixed = voicing_fix(m.group(0))
        if fixed is None:
            if _doubtful(m.group(0)):
                notes.append(f"kana?:{m.group(0)}")
            return m.group(0)
        notes.append(f"kana:{m.group(0)}->{fixed}")
        return fixed

    text = unicodedata.normalize("NFC", text)
    out = KANA_RUN.sub(sub, text)
    notes += [f"kana?:{m.group(0)}" for m in _SMALL_Y.finditer(out)]
    return out, notes
