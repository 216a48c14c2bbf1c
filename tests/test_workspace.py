"""The workspace: faxflow init, faxflow.toml read once into Settings, errors naming file and key."""

from __future__ import annotations

import sqlite3
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from faxflow.cli import app
from faxflow.ingest.workspace import (CONFIG_NAME, CONFIG_TEMPLATE, FOLDERS, init_workspace, load_settings,
                                      read_config)
from faxflow.templates.errors import ConfigError, ExitCode


@pytest.fixture(autouse=True)
def _no_env_home(monkeypatch):
    monkeypatch.delenv("FAXFLOW_HOME", raising=False)


def test_init_creates_folders_config_and_database(tmp_path):
    home = tmp_path / "ws"
    result = init_workspace(home)
    for name in FOLDERS:
        assert (home / name).is_dir(), name
    assert (home / CONFIG_NAME).read_text(encoding="utf-8") == CONFIG_TEMPLATE
    tables = {r[0] for r in sqlite3.connect(home / "faxflow.db").execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"files", "runs", "documents", "meta"} <= tables
    assert "inbox/" in result.created and CONFIG_NAME in result.created and result.kept == ()


def test_init_again_keeps_everything(tmp_path):
    home = tmp_path / "ws"
    init_workspace(home)
    cfg = home / CONFIG_NAME
    cfg.write_text("[batch]\njobs = 2\n", encoding="utf-8")
    (home / "inbox" / "waiting.pdf").write_bytes(b"%PDF-1.4")
    result = init_workspace(home)
    assert result.created == ()
    assert cfg.read_text(encoding="utf-8") == "[batch]\njobs = 2\n"
    assert (home / "inbox" / "waiting.pdf").exists()
    assert load_settings(home).jobs == 2


def test_the_shipped_config_is_valid_and_gives_the_defaults(tmp_path):
    from faxflow.ingest.settings import Settings

    init_workspace(tmp_path)
    s = load_settings(tmp_path)
    d = Settings.for_home(tmp_path.resolve())
    assert s.config_path == tmp_path.resolve() / CONFIG_NAME
    for f in ("inbox", "processing", "archive", "failed", "exports", "templates_dir", "logs", "db_path", "jobs",
              "poll", "poll_interval", "stable_seconds", "max_attempts", "retry_backoff", "stale_after",
              "lock_wait", "export_encoding", "export_after_run", "export_kinds", "export_only_new",
              "export_statuses"):
        assert getattr(s, f) == getattr(d, f), f
    assert s.ocr == d.ocr
    # every key in the template is a real key (nothing silently ignored)
    data = tomllib.loads(CONFIG_TEMPLATE)
    assert set(data) == {"paths", "ocr", "review", "watch", "batch", "export"}


def test_config_values_and_paths(tmp_path):
    nas = tmp_path / "nas" / "fax"
    (tmp_path / CONFIG_NAME).write_text(f"""
[paths]
inbox = '{nas}'
processing = '{nas.parent / "processing"}'
database = "data/ff.db"
[ocr]
languages = "jpn+eng"
[review]
threshold = 0.7
[watch]
poll = true
stable_seconds = 5
[batch]
jobs = 2
max_attempts = 5
[export]
encoding = "Shift_JIS"
after_run = true
kinds = ["order"]
statuses = ["ok"]
""", encoding="utf-8")
    s = load_settings(tmp_path, max_attempts=7)
    assert s.inbox == nas and s.processing == nas.parent / "processing"
    assert s.db_path == tmp_path.resolve() / "data" / "ff.db"
    assert s.archive == tmp_path.resolve() / "archive"
    assert s.ocr.languages == "jpn+eng" and s.ocr.review_threshold == 0.7
    assert s.poll is True and s.stable_seconds == 5.0 and s.jobs == 2
    assert s.max_attempts == 7  # overrides win
    assert s.export_encoding == "cp932" and s.export_after_run and s.export_kinds == ("order",)
    assert s.export_statuses == ("ok",)


@pytest.mark.parametrize("text,key", [
    ("[batch]\njbos = 2\n", "jbos"),
    ("[batch]\njobs = 'two'\n", "jobs"),
    ("[batch]\njobs = 65\n", "jobs"),
    ("[watch]\npoll = 'yes'\n", "poll"),
    ("[exports]\nencoding = 'cp932'\n", "[exports]"),
    ("[export]\nencoding = 'latin-1'\n", "encoding"),
    ("[export]\nkinds = ['orders']\n", "kinds"),
    ("[paths]\ninbox = 3\n", "inbox"),
    ("[batch]\njobs = \n", "line"),  # TOML syntax error: tomllib says where
], ids=["typo", "type", "range", "bool", "section", "encoding", "kind", "path", "syntax"])
def test_config_errors_name_the_file_and_the_key(tmp_path, text, key):
    cfg = tmp_path / CONFIG_NAME
    cfg.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path)
    msg = str(info.value)
    assert str(cfg) in msg and key in msg
    assert info.value.ja and info.value.exit_code == ExitCode.CANNOT_RUN


def test_run_inbox_without_workspace_uses_the_parent(tmp_path):
    inbox = tmp_path / "fax-in"
    inbox.mkdir()
    s = load_settings(None, inbox=inbox)
    assert s.home == tmp_path.resolve() and s.inbox == inbox.resolve()
    assert s.archive == tmp_path.resolve() / "archive" and s.db_path == tmp_path.resolve() / "faxflow.db"


def test_a_missing_inbox_argument_is_an_error_not_a_new_folder(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(None, inbox=tmp_path / "fax-inn")
    assert not (tmp_path / "fax-inn").exists()


def test_folders_outside_the_workspace_are_never_created(tmp_path):
    from faxflow.ingest.workspace import ensure_folders

    init_workspace(tmp_path / "ws")
    share = tmp_path / "nas" / "fax"  # a share that is not mounted
    (tmp_path / "ws" / CONFIG_NAME).write_text(f"[paths]\ninbox = '{share}'\n", encoding="utf-8")
    s = load_settings(tmp_path / "ws")
    with pytest.raises(ConfigError, match="mounted"):
        ensure_folders(s)
    assert not share.exists()
    share.mkdir(parents=True)
    ensure_folders(s)  # mounted: fine


def test_home_from_environment(tmp_path, monkeypatch):
    init_workspace(tmp_path / "ws")
    monkeypatch.setenv("FAXFLOW_HOME", str(tmp_path / "ws"))
    assert load_settings(None).home == (tmp_path / "ws").resolve()


def test_no_workspace_and_missing_workspace_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="--home"):
        load_settings(None)
    with pytest.raises(ConfigError, match="faxflow init"):
        load_settings(tmp_path / "nope")


def test_read_config_of_an_empty_file_is_empty(tmp_path):
    (tmp_path / CONFIG_NAME).write_text("# nothing\n", encoding="utf-8")
    assert read_config(tmp_path / CONFIG_NAME) == {}


def test_cli_init_and_status(tmp_path):
    runner = CliRunner()
    home = tmp_path / "事務所 faxflow"
    r = runner.invoke(app, ["init", str(home)])
    assert r.exit_code == 0, r.output
    assert "created" in r.output and (home / "inbox").is_dir()
    (home / "inbox" / "注文書 1.pdf").write_bytes(b"%PDF-1.4")
    r = runner.invoke(app, ["status", "--home", str(home)])
    assert r.exit_code == 0, r.output
    assert "1 file(s) waiting" in r.output and "last batch: never ran" in r.output
    r = runner.invoke(app, ["status"], env={"FAXFLOW_HOME": str(home)})
    assert r.exit_code == 0 and "1 file(s) waiting" in r.output


def test_cli_bad_config_exits_2_naming_the_key(tmp_path):
    init_workspace(tmp_path)
    (tmp_path / CONFIG_NAME).write_text("[batch]\njobs = -1\n", encoding="utf-8")
    r = CliRunner().invoke(app, ["status", "--home", str(tmp_path)])
    assert r.exit_code == ExitCode.CANNOT_RUN
    assert "jobs" in r.output and CONFIG_NAME in r.output


def test_cli_without_workspace_exits_2(tmp_path):
    r = CliRunner().invoke(app, ["status"], env={"FAXFLOW_HOME": ""})
    assert r.exit_code == ExitCode.CANNOT_RUN and "--home" in r.output


def test_folders_constant_matches_settings(tmp_path):
    s = load_settings(Path(init_workspace(tmp_path).home))
    assert {Path(getattr(s, a)).name for a in ("inbox", "processing", "archive", "failed", "exports", "logs")} \
        | {s.templates_dir.name} == set(FOLDERS)


def test_jobs_zero_means_one_per_core(tmp_path):
    from faxflow.ingest.settings import default_jobs

    init_workspace(tmp_path)
    (tmp_path / CONFIG_NAME).write_text("[batch]\njobs = 0\n", encoding="utf-8")
    assert load_settings(tmp_path).jobs == default_jobs() == max(1, min(4, __import__("os").cpu_count() or 1))
