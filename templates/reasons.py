"""Review reasons: short codes stored with each value, shown to clerks in Japanese.

A value's ``reasons`` are codes, optionally with a detail after a colon
(``"pattern:^[A-Z]{2}-\\d{4}$"``). ``describe(code)`` gives the Japanese text for the
review page and error files; ``describe(code, "en")`` the English one for logs.
Add new codes here, in one place, with both languages.
"""

from __future__ import annotations

REASONS: dict[str, tuple[str, str]] = {
    # reading
    "low_confidence": ("読み取りの確信度が低い", "low OCR confidence"),
    "engines_disagree": ("2つの読み取り結果が一致しない", "the two readings disagree"),
    "unreadable": ("文字を読み取れない", "no text could be read"),
    "alignment_doubtful": ("用紙の位置合わせが不確か", "page alignment is doubtful"),
    # parsing
    "empty_required": ("必須項目が空欄", "required field is empty"),
    "not_a_number": ("数値として読めない", "not a number"),
    "not_a_date": ("日付として読めない", "not a date"),
    "pattern": ("書式が正しくない", "does not match the expected pattern"),
    "not_allowed": ("許可された値ではない", "not one of the allowed values"),
    "out_of_range": ("値が範囲外", "value out of range"),
    "year_inferred": ("年を推定した", "year was inferred"),
    "year_unknown": ("年が書かれておらず推定できない", "no year written and none to infer it from"),
    "year_from_doubtful_header": ("年を、確認が必要な注文日（または台帳の年）から補った",
                                  "the year comes from the order date (or the ledger's year), which is itself for review"),
    "year_from_fax_date": ("年はFAX送信日から推定", "the year was inferred from the FAX sending date (header line)"),
    "year_from_page_date": ("年は同じ用紙の他の日付から推定",
                            "the year was inferred from another date on the same page"),
    "fax_date_mismatch": ("FAX送信日と60日以上離れている", "more than 60 days from the FAX sending date"),
    "weekday_mismatch": ("曜日が日付と一致しない", "the weekday does not match the date"),
    "correction": ("訂正 (二重線で消した値) があり、新しい値を読んだ", "a value was crossed out; the new one was read"),
    "separator_guessed": ("区切り文字 (/ や -) が読めず、位置を推定した",
                          "a separator (/ or -) was not read; its place was guessed"),
    "stamp": ("印影（はんこ）のみで文字として読み取れない", "only a seal impression (hanko): nothing to transcribe"),
    "date_repaired": ("日付をそのままでは読めず、区切りや似た文字を補って推定した",
                      "the date did not read as written; lost separators or look-alike characters were assumed"),
    "kana_voicing": ("濁点・半濁点が読み取りと違う可能性がある（辞書の語に直して表示）",
                     "a voicing mark (゛/゜) was probably lost or misread; shown as the dictionary word"),
    "gap_in_number": ("数字の間に空白があり、小数点や - が消えた可能性がある",
                      "a gap between digits: a decimal point or hyphen may have been lost"),
    "shape_differs": ("同じ列のほかの行と形が違う（英字と数字の読み違いの可能性: T と 1、O と 0 など）",
                      "unlike the other rows of its column: a letter read as a digit, or a digit as a letter "
                      "(T/1, O/0)?"),
    "kana_doubtful": ("カタカナが辞書の語にならない（読み違いの可能性）",
                      "katakana that spells no dictionary word (a likely misreading)"),
    "marks_removed": ("枠の区切り線や汚れと思われる記号を取り除いた",
                      "marks taken for box dividers or dirt were removed to fit the pattern"),
    "bracket_unpaired": ("かっこの片方しか読めていない（文字の欠け・読み落としの可能性）",
                         "a bracket without its partner: a character was cut off or lost"),
    "lone_character": ("1文字（かな・記号）だけの読み取り：印影や汚れの可能性",
                       "a lone kana or symbol: likely a broken seal or a smudge, not text"),
    "lookalike_corrected": ("似た文字を置き換えた (例: O→0)", "a look-alike character was replaced (e.g. O -> 0)"),
    # cross-field rules
    "amount_mismatch": ("金額が 数量×単価 と一致しない", "amount != quantity x unit price"),
    "from_other_columns": ("読めなかった値の代わりに 数量×単価＝金額 から求めた値を表示",
                           "shown: the value the other two of quantity x unit price = amount give"),
    "from_other_readings": ("数量×単価＝金額 が合う別の読み取り候補を表示（要確認）",
                            "shown: another reading of the cell, the one with which quantity x unit price = amount"),
    "total_mismatch": ("合計が明細の金額の合計と一致しない", "the total != the sum of the lines' amounts"),
    "due_before_order": ("納期が注文日より前", "due date is before the order date"),
    "balance_mismatch": ("残高が 前残高＋入庫−出庫 と一致しない", "balance != previous + in - out"),
    "partial_row": ("行の一部だけが記入されている", "row is only partly filled"),
    "cell_not_read": ("読み直しでこの行が読めず、この欄には読み取った値がない",
                      "a re-run no longer read this row: this cell has no reading"),
    "faint_print": ("印字が薄く、空欄の項目や行が消えている可能性がある",
                    "faint print: empty fields (or whole rows) may have been lost"),
    "mostly_unreadable": ("ページの大半が読み取れず、空欄の項目も値が消えている可能性がある",
                          "most of the page could not be read: empty fields may have lost their values"),
    "no_rows": ("明細行が1行も読み取れない", "no filled table row was found"),
    # page level
    "unknown_form": ("どのテンプレートにも一致しない用紙", "the page matches no template"),
    "form_unconfirmed": ("用紙の見出し（キーワード）が読めず、用紙の種類を確認できない（別の取引先の同じ様式の可能性）",
                         "the form's keywords could not be read: the page fits this template, but may be "
                         "another customer's copy of the same form"),
    # export
    "unencodable": ("出力の文字コードで表せない文字を〓に置き換えた",
                    "characters the export encoding cannot represent were replaced by 〓"),
}


def code_of(reason: str) -> str:
    return reason.split(":", 1)[0]


def describe(reason: str, lang: str = "ja") -> str:
    code, _, detail = reason.partition(":")
    ja, en = REASONS.get(code, (code, code))
    text = ja if lang == "ja" else en
    return f"{text} ({detail})" if detail else text
