"""The workspace: one folder holding the inbox, the working folders, the database,
the logs and ``faxflow.toml``. Settings are read here, once, into the frozen
:class:`~faxflow.ingest.settings.Settings` (nothing below reads the config again).

Layout (``faxflow init DIR``)::

    DIR/faxflow.toml     configuration (commented; every key optional)
    DIR/inbox/           clerks and the FAX server drop scans here
    DIR/processing/      files being read (claimed by an atomic rename)
    DIR/archive/         processed scans, archive/YYYY-MM-DD/NAME
    DIR/failed/          scans that could not be read, with NAME.error.txt
    DIR/exports/         CSV hand-off files
    DIR/templates/       the office's own form templates (beside the shipped ones)
    DIR/logs/            faxflow.log and one report per batch
    DIR/faxflow.db       the SQLite database
    DIR/pages/           page images for the review page, pages/<sha256 first 16>/p001.png

Which workspace: ``--home`` or ``$FAXFLOW_HOME``; without either, ``faxflow run INBOX``
uses the inbox's parent folder as the workspace (archive/, failed/, faxflow.db beside it).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from faxflow.ingest.settings import OcrSettings, Settings
from faxflow.templates.errors import ConfigError

CONFIG_NAME = "faxflow.toml"
HOME_ENV = "FAXFLOW_HOME"
FOLDERS = ("inbox", "processing", "archive", "failed", "exports", "templates", "logs")

CONFIG_TEMPLATE = """\
# faxflow workspace settings / faxflow 作業フォルダの設定
#
# Every key is optional: delete a line (or put # in front) to use the default shown.
# Relative paths are relative to this file's folder. After a change, restart
# 'faxflow watch'; the nightly 'faxflow run' reads this file each time it starts.
# 相対パスはこのファイルのあるフォルダからの位置です。変更後は faxflow watch を再起動してください。

[paths]
inbox = "inbox"              # scans to read / 受信フォルダ (a network share is fine: see [watch] poll)
processing = "processing"    # files being read; must be on the same drive/share as inbox
archive = "archive"          # processed scans, archive/YYYY-MM-DD/NAME / 処理済み
failed = "failed"            # unreadable scans + NAME.error.txt (reason) / 読めなかったファイル
exports = "exports"          # CSV hand-off files / CSV 出力
templates = "templates"      # the office's own form templates, used beside the shipped ones
logs = "logs"                # faxflow.log and one report per batch / ログ
database = "faxflow.db"      # SQLite database; keep it on a local disk, not on a network share
pages = "pages"              # page images shown on the review page (faxflow review) / レビュー画面用の画像

[ocr]
languages = "jpn"            # Tesseract language(s) for free text ("jpn" also reads Latin letters and digits)
# tessdata = "/usr/share/tesseract-ocr/5/tessdata"   # only if Tesseract cannot find its data
second_engine = true         # also read printed fields with PP-OCR (fewer misreads; false: Tesseract alone, faster)
pdf_dpi = 300                # resolution PDF pages are rendered at
max_pixels = 120000000       # larger pages are refused (protects against huge/broken images)

[review]
threshold = 0.80             # printed fields read with less confidence are flagged for review / 要確認の閾値
handwriting_threshold = 0.90 # the same for handwritten numbers / 手書き数字の閾値
text_threshold = 0.98        # free text (品名, 発注者): Tesseract is confidently wrong on FAXed kana more often / 自由記述の閾値

[watch]
poll = false                 # true: scan the folder every poll_interval (network shares, NAS); same as --poll
poll_interval = 2.0          # seconds between folder scans
stable_seconds = 2.0         # a file is taken once its size and time are unchanged this long / 書き込み完了の判定（秒）

[batch]
jobs = 0                     # worker processes for 'faxflow run' and 'faxflow watch'; 0 = one per CPU core (at most 4)
max_attempts = 3             # tries per file (database busy, interrupted runs) before it goes to failed/
retry_backoff = 2.0          # seconds before the first retry; doubles each time
stale_after = 1800           # seconds after which a file left in processing/ is taken over
lock_wait = 10               # a second 'faxflow run' waits this long for the first, then exits with code 2

[export]
encoding = "utf-8-sig"       # "utf-8-sig" (Excel) or "cp932" (Shift_JIS for older systems)
after_run = false            # true: 'faxflow run' also writes the CSV hand-off (same as 'faxflow run --export')
kinds = ["order", "ledger"]  # which CSV files: order lines, ledger entries
only_new = true              # only rows not handed off before (and mark them as handed off)
# statuses = ["ok"]          # only rows with no open question; default: all rows, with their status column
"""


@dataclass(frozen=True)
class InitResult:
    home: Path
    config: Path
    created: tuple[str, ...]  # folders/files created now
    kept: tuple[str, ...]  # already there, left as they were
    database: Path | None  # created/opened database, None when the store is not available


# --------------------------------------------------------------------------- config keys --

def _path(v: Any) -> Path:
    if not isinstance(v, str) or not v.strip():
        raise ValueError("must be a non-empty path in quotes")
    return Path(os.path.expandvars(os.path.expanduser(v)))


def _float(lo: float, hi: float | None = None) -> Callable[[Any], float]:
    def conv(v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError("must be a number")
        if v < lo or (hi is not None and v > hi):
            raise ValueError(f"must be between {lo} and {hi}" if hi is not None else f"must be at least {lo}")
        return float(v)
    return conv


def _int(lo: int, hi: int | None = None) -> Callable[[Any], int]:
    def conv(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError("must be a whole number")
        if v < lo or (hi is not None and v > hi):
            raise ValueError(f"must be between {lo} and {hi}" if hi is not None else f"must be at least {lo}")
        return v
    return conv


def _jobs(v: Any) -> int:
    from faxflow.ingest.settings import default_jobs

    n = _int(0, 64)(v)
    return n or default_jobs()  # 0: one per CPU core


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError("must be true or false")
    return v


def _str(v: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise ValueError("must be a non-empty text in quotes")
    return v.strip()


def _encoding(v: Any) -> str:
    v = _str(v)
    low = v.lower().replace("_", "-")
    if low in ("shift-jis", "sjis", "windows-31j", "ms932", "cp932"):
        return "cp932"
    if low in ("utf-8-sig", "utf8-sig", "utf-8", "utf8"):
        return "utf-8-sig" if "sig" in low else "utf-8"
    raise ValueError('must be "utf-8-sig" or "cp932"')


def _choices(allowed: tuple[str, ...]) -> Callable[[Any], tuple[str, ...]]:
    def conv(v: Any) -> tuple[str, ...]:
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise ValueError(f"must be a list like {list(allowed)}")
        bad = [x for x in v if x not in allowed]
        if bad:
            raise ValueError(f"{bad[0]!r} is not one of {', '.join(allowed)}")
        return tuple(v)
    return conv


# (section, key) -> (Settings field, or "ocr.<field>", converter)
KEYS: dict[tuple[str, str], tuple[str, Callable[[Any], Any]]] = {
    ("paths", "inbox"): ("inbox", _path),
    ("paths", "processing"): ("processing", _path),
    ("paths", "archive"): ("archive", _path),
    ("paths", "failed"): ("failed", _path),
    ("paths", "exports"): ("exports", _path),
    ("paths", "templates"): ("templates_dir", _path),
    ("paths", "logs"): ("logs", _path),
    ("paths", "database"): ("db_path", _path),
    ("paths", "pages"): ("pages_dir", _path),
    ("ocr", "languages"): ("ocr.languages", _str),
    ("ocr", "tessdata"): ("ocr.tessdata", _path),
    ("ocr", "second_engine"): ("ocr.second_engine", _bool),
    ("ocr", "pdf_dpi"): ("ocr.pdf_dpi", _int(72, 1200)),
    ("ocr", "max_pixels"): ("ocr.max_pixels", _int(1_000_000)),
    ("review", "threshold"): ("ocr.review_threshold", _float(0.0, 1.0)),
    ("review", "handwriting_threshold"): ("ocr.handwriting_threshold", _float(0.0, 1.0)),
    ("review", "text_threshold"): ("ocr.text_threshold", _float(0.0, 1.0)),
    ("watch", "poll"): ("poll", _bool),
    ("watch", "poll_interval"): ("poll_interval", _float(0.1, 3600)),
    ("watch", "stable_seconds"): ("stable_seconds", _float(0.0, 3600)),
    ("batch", "jobs"): ("jobs", _jobs),
    ("batch", "max_attempts"): ("max_attempts", _int(1, 100)),
    ("batch", "retry_backoff"): ("retry_backoff", _float(0.0, 3600)),
    ("batch", "stale_after"): ("stale_after", _float(10.0)),
    ("batch", "lock_wait"): ("lock_wait", _float(0.0, 86400)),
    ("export", "encoding"): ("export_encoding", _encoding),
    ("export", "after_run"): ("export_after_run", _bool),
    ("export", "kinds"): ("export_kinds", _choices(("order", "ledger"))),
    ("export", "only_new"): ("export_only_new", _bool),
    ("export", "statuses"): ("export_statuses", _choices(("ok", "review"))),
}
_PATH_FIELDS = {"inbox", "processing", "archive", "failed", "exports", "templates_dir", "logs", "db_path",
                "pages_dir"}


def read_config(path: Path) -> dict[str, Any]:
    """Parse ``faxflow.toml`` into ``{settings field: value}``; ``ConfigError`` naming
    the file and the key on any problem (unknown keys included: a typo must not be
    silently ignored on a machine nobody watches)."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}",
                          f"設定ファイル {path} の書き方が正しくありません: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror or exc}",
                          f"設定ファイル {path} を読めません: {exc.strerror or exc}") from exc
    values: dict[str, Any] = {}
    for section, table in data.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: '{section}' must be a [section], e.g. [{section}]",
                              f"設定ファイル {path}: '{section}' は [セクション] の形で書いてください")
        known = {k for s, k in KEYS if s == section}
        if not known:
            sections = sorted({s for s, _ in KEYS})
            raise ConfigError(f"{path}: unknown section [{section}] (known: {', '.join(sections)})",
                              f"設定ファイル {path}: [{section}] という項目はありません")
        for key, raw in table.items():
            if (section, key) not in KEYS:
                raise ConfigError(
                    f"{path}: unknown key '{key}' in [{section}] (known: {', '.join(sorted(known))})",
                    f"設定ファイル {path}: [{section}] に '{key}' という設定はありません",
                )
            name, conv = KEYS[(section, key)]
            try:
                values[name] = conv(raw)
            except ValueError as exc:
                raise ConfigError(f"{path}: [{section}] {key} {exc} (got {raw!r})",
                                  f"設定ファイル {path}: [{section}] {key} の値 {raw!r} が正しくありません ({exc})") from exc
    return values


# ---------------------------------------------------------------------------- settings --

def resolve_home(home: Path | None, inbox: Path | None = None) -> Path:
    """``home``, else ``$FAXFLOW_HOME``, else the inbox's parent; ConfigError if none."""
    if home is not None:
        return Path(home).expanduser()
    env = os.environ.get(HOME_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    if inbox is not None:
        return Path(inbox).expanduser().resolve().parent
    raise ConfigError(
        f"no workspace: give --home DIR, set {HOME_ENV}, or create one with 'faxflow init DIR'",
        f"作業フォルダが指定されていません。--home で指定するか、環境変数 {HOME_ENV} を設定するか、"
        "'faxflow init フォルダ' で作成してください",
    )


def load_settings(home: Path | None, *, inbox: Path | None = None, **overrides: Any) -> Settings:
    """Read the workspace's ``faxflow.toml`` (if present) once into :class:`Settings`.

    ``inbox`` (the ``faxflow run INBOX`` argument) wins over the config file; without
    ``home`` and ``$FAXFLOW_HOME`` the inbox's parent is the workspace. ``overrides``
    are Settings fields (e.g. ``jobs=2``, ``keep_work=Path(...)``), applied last.
    """
    home = resolve_home(home, inbox).resolve()
    if not home.is_dir():
        raise ConfigError(
            f"workspace {home} does not exist; create it with 'faxflow init {home}'",
            f"作業フォルダ {home} がありません。'faxflow init {home}' で作成してください",
        )
    config = home / CONFIG_NAME
    values = read_config(config) if config.is_file() else {}
    plain: dict[str, Any] = {}
    ocr: dict[str, Any] = {}
    for name, value in values.items():
        if name.startswith("ocr."):
            ocr[name[4:]] = value
        else:
            if name in _PATH_FIELDS and not value.is_absolute():
                value = home / value
            plain[name] = value
    if "tessdata" in ocr and not ocr["tessdata"].is_absolute():
        ocr["tessdata"] = home / ocr["tessdata"]
    if inbox is not None:
        plain["inbox"] = Path(inbox).expanduser().resolve()
        if not plain["inbox"].is_dir():
            raise ConfigError(f"inbox folder {plain['inbox']} does not exist",
                              f"受信フォルダ {plain['inbox']} がありません")
    if ocr:
        plain["ocr"] = dataclasses.replace(OcrSettings(), **ocr)
    plain["config_path"] = config if config.is_file() else None
    fields = {f.name for f in dataclasses.fields(Settings)}
    for key in overrides:
        if key not in fields:
            raise TypeError(f"load_settings: unknown setting {key!r}")
    plain.update({k: v for k, v in overrides.items() if k != "home"})
    return Settings.for_home(home, **plain)


def ensure_folders(settings: Settings) -> None:
    """Create the working folders if missing (a workspace made by hand, or ``run INBOX``).

    A folder configured *outside* the workspace (a network share) is never created: if it
    is missing, the share is probably not mounted, and a local folder of the same name
    would silently collect nothing (ConfigError, exit 2; systemd/Task Scheduler retry).
    """
    home = Path(settings.home).resolve()
    for folder in (settings.inbox, settings.processing, settings.archive, settings.failed,
                   settings.exports, settings.logs):
        folder = Path(folder)
        if not folder.is_dir() and not _inside(folder, home):
            raise ConfigError(
                f"folder {folder} does not exist (is the network share mounted?)",
                f"フォルダ {folder} が見つかりません（ネットワーク共有に接続されていますか？）",
            )
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create folder {folder}: {exc.strerror or exc}",
                              f"フォルダ {folder} を作成できません: {exc.strerror or exc}") from exc


def _inside(path: Path, folder: Path) -> bool:
    try:
        Path(path).resolve().relative_to(folder)
        return True
    except ValueError:
        return False


def init_workspace(home: Path) -> InitResult:
    """Create the workspace folders, a commented ``faxflow.toml`` and the database.

    Safe to run again: existing folders, config and database are kept as they are.
    """
    home = Path(home).expanduser().resolve()
    created: list[str] = []
    kept: list[str] = []
    try:
        if not home.exists():
            home.mkdir(parents=True)
        for name in FOLDERS:
            d = home / name
            if d.is_dir():
                kept.append(name + "/")
            else:
                d.mkdir(parents=True)
                created.append(name + "/")
        config = home / CONFIG_NAME
        if config.exists():
            kept.append(CONFIG_NAME)
        else:
            tmp = config.with_name(CONFIG_NAME + ".tmp")
            tmp.write_text(CONFIG_TEMPLATE, encoding="utf-8", newline="\n")
            os.replace(tmp, config)
            created.append(CONFIG_NAME)
    except OSError as exc:
        raise ConfigError(f"cannot create the workspace {home}: {exc.strerror or exc}",
                          f"作業フォルダ {home} を作成できません: {exc.strerror or exc}") from exc
    settings = load_settings(home)  # validates the config we keep or just wrote
    existed = settings.db_path.exists()
    database = _create_database(settings)
    if database is not None:
        (kept if existed else created).append(settings.db_path.name)
    return InitResult(home=home, config=config, created=tuple(created), kept=tuple(kept), database=database)


def _create_database(settings: Settings) -> Path | None:
    try:
        from faxflow.ingest.queue import FileQueue
    except ImportError:  # pragma: no cover - store not available: created on the first run
        return None
    FileQueue.open(settings).close()
    return settings.db_path


__all__ = ["CONFIG_NAME", "CONFIG_TEMPLATE", "FOLDERS", "HOME_ENV", "InitResult", "ensure_folders",
           "init_workspace", "load_settings", "read_config", "resolve_home"]
