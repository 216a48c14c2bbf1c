"""`faxflow templates new`: a draft template from the blank form, checked against the
hand-measured template of the same form."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from faxflow.cli import app

pytestmark = pytest.mark.tesseract
ROOT = Path(__file__).resolve().parent.parent
FORMS = ROOT / "templates" / "forms"


def close(a, b, tol=8):
    return all(abs(x - y) <= tol for x, y in zip(a, b))


@pytest.fixture(scope="module")
def drafted(tmp_path_factory):
    home = tmp_path_factory.mktemp("ws")
    runner = CliRunner()
    assert runner.invoke(app, ["init", str(home)]).exit_code == 0
    result = runner.invoke(app, ["templates", "new", "kawada_copy", str(FORMS / "kawada_order.png"),
                                 "--home", str(home)])
    assert result.exit_code == 0, result.output
    return home, result.output


def test_draft_matches_the_hand_measured_template(drafted):
    home, _ = drafted
    draft = yaml.safe_load((home / "templates" / "kawada_copy.yaml").read_text(encoding="utf-8"))
    truth = yaml.safe_load((FORMS / "kawada_order.yaml").read_text(encoding="utf-8"))
    t_lines, d_lines = truth["tables"]["lines"], draft["tables"]["lines"]
    assert d_lines["rows"]["count"] == t_lines["rows"]["count"]
    assert abs(d_lines["rows"]["pitch"] - t_lines["rows"]["pitch"]) <= 2
    assert list(d_lines["columns"]) == list(t_lines["columns"])  # every column named right, in order
    for name, col in t_lines["columns"].items():
        assert close(d_lines["columns"][name]["x"], col["x"]), name
        assert d_lines["columns"][name]["type"] == col["type"], name
    for name in ("order_no", "order_date", "buyer", "total"):
        assert close(draft["fields"][name]["box"], truth["fields"][name]["box"]), name
    assert "注文書" in draft["match"]["keywords"] and draft["kind"] == "order"
    assert draft["checks"] == ["amount", "due_date", "total"]


def test_draft_loads_and_previews(drafted):
    home, output = drafted
    assert "table: 8 columns" in output and "14 rows" in output
    runner = CliRunner()
    check = runner.invoke(app, ["templates", "check", "--home", str(home)])
    assert check.exit_code == 0 and "kawada_copy" in check.output
    out = home / "prev.png"
    prev = runner.invoke(app, ["templates", "preview", "kawada_copy", "--home", str(home), "-o", str(out)])
    assert prev.exit_code == 0 and out.stat().st_size > 10_000


def test_existing_template_is_not_overwritten(drafted):
    home, _ = drafted
    result = CliRunner().invoke(app, ["templates", "new", "kawada_copy", str(FORMS / "kawada_order.png"),
                                      "--home", str(home)])
    assert result.exit_code != 0 and "--force" in result.output


def test_bad_name_is_refused(tmp_path):
    result = CliRunner().invoke(app, ["templates", "new", "Tanaka Order", str(FORMS / "kawada_order.png"),
                                      "--dir", str(tmp_path)])
    assert result.exit_code != 0 and not list(tmp_path.iterdir())


def test_ledger_draft(tmp_path):
    result = CliRunner().invoke(app, ["templates", "new", "ledger_copy", str(FORMS / "ledger_nyushukko.png"),
                                      "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    draft = yaml.safe_load((tmp_path / "ledger_copy.yaml").read_text(encoding="utf-8"))
    truth = yaml.safe_load((FORMS / "ledger_nyushukko.yaml").read_text(encoding="utf-8"))
    assert draft["kind"] == "ledger" and draft["year_from"] == "year" and draft["checks"] == ["balance"]
    assert close(draft["fields"]["year"]["box"], truth["fields"]["year"]["box"])
    d, t = draft["tables"]["entries"], truth["tables"]["entries"]
    assert list(d["columns"]) == list(t["columns"]) and d["rows"]["from"] == t["rows"]["from"] == "ruling"
    assert d["rows"]["count"] == t["rows"]["count"] and abs(d["rows"]["pitch"] - t["rows"]["pitch"]) <= 2
    for name, col in t["columns"].items():
        assert close(d["columns"][name]["x"], col["x"]), name
    assert "入出庫台帳" in draft["match"]["keywords"]


def test_missing_image_says_so(tmp_path):
    result = CliRunner().invoke(app, ["templates", "new", "x", str(tmp_path / "nope.png"), "--dir", str(tmp_path)])
    assert result.exit_code != 0 and "no such file" in result.output


def test_a_page_without_ruling_gets_a_draft_that_says_what_is_missing(tmp_path):
    import numpy as np
    from PIL import Image

    Image.fromarray(np.full((800, 600), 255, np.uint8)).save(tmp_path / "blank.png")
    result = CliRunner().invoke(app, ["templates", "new", "bare", str(tmp_path / "blank.png"), "--dir", str(tmp_path)])
    assert result.exit_code == 3  # the draft does not load yet: nothing to read
    assert "no ruled cells found" in result.output and (tmp_path / "bare.yaml").is_file()


@pytest.mark.parametrize("keywords, code, severity", [
    ("[見積書, 佐藤商事]", 3, "error"),  # none printed on the form: every page an unknown form
    ("[注文書, 佐藤商事]", 0, "warning"),  # one of two: pages are confirmed by the other
    ("[注文書, 山田製作所]", 0, None),
])
def test_check_reads_the_keywords_on_the_reference(tmp_path, keywords, code, severity):
    import shutil

    home = tmp_path / "ws"
    (home / "templates").mkdir(parents=True)
    shutil.copy(FORMS / "yamada_order.png", home / "templates" / "sato_order.png")
    text = (FORMS / "yamada_order.yaml").read_text(encoding="utf-8")
    text = text.replace("name: yamada_order", "name: sato_order").replace("yamada_order.png", "sato_order.png")
    text = text.replace("keywords: [注文書, 山田製作所]", f"keywords: {keywords}")
    (home / "templates" / "sato_order.yaml").write_text(text, encoding="utf-8")
    result = CliRunner().invoke(app, ["templates", "check", "--home", str(home)])
    assert result.exit_code == code, result.output
    mine = [ln for ln in result.output.splitlines() if "sato_order.yaml" in ln]
    if severity is None:
        assert not mine, result.output
    else:
        assert len(mine) == 1 and f":11: {severity}:" in mine[0] and "佐藤商事" in mine[0], result.output
        assert ("見積書" in mine[0]) == (severity == "error")
