"""The nightly batch: process whatever is waiting in the inbox, then report.

    run_batch(settings) -> BatchReport        (faxflow run [INBOX] [--jobs N])

* A lock file (``faxflow-batch.lock`` in the workspace) keeps a second batch from
  starting while one runs: the second waits ``lock_wait`` seconds, then exits 2 with
  a message naming the running one. (Claims are atomic, so even two batches that got
  past the lock - e.g. from two machines on one share - never take the same file;
  the lock is about not fighting over CPU and reports, not about correctness.) The
  watcher does not take the lock: a watcher and a batch share the inbox safely.
* Files are claimed (atomic rename, see ``ingest/queue.py``) only when a worker is
  free, so a watcher or another batch can take the rest meanwhile.
* ``--jobs N`` worker processes, each with ONE ``Pipeline`` built by the pool's
  initializer (templates, Tesseract, digit model loaded once per process) and
  ``OMP_THREAD_LIMIT=1``. A worker that dies (segfault, out of memory) breaks the
  pool: it is restarted and the files it held are retried one at a time, so the
  culprit is found and, after ``max_attempts``, set aside in failed/.
* Per file, :func:`handle_claim` catches everything: transient errors (database
  locked, file locked) are retried with a doubling delay, permanent ones and
  unexpected exceptions send the file to failed/ with NAME.error.txt; only errors
  that are not the file's fault (OCR engine missing, database unusable) put the file
  back and stop the run with exit 2.

The watcher (``ingest/watch.py``) uses the same :class:`Runner`, :class:`Dispatcher`
and :func:`handle_claim`.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import datetime as dt
import inspect
import multiprocessing as mp
import os
import signal
import sqlite3
import threading
import time
from collections import Counter, deque
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, Callable, Iterator

from faxflow.ingest.logs import ensure_file_logging, get_logger, log_outcome, start_listener, worker_logging
from faxflow.ingest.queue import (HOST, Claim, FileQueue, db_transient, interrupted_error, is_locked_error,
                                  now_iso, pid_alive)
from faxflow.ingest.report import BatchReport, FileOutcome, iter_flagged
from faxflow.ingest.settings import Settings
from faxflow.ingest.stability import StabilityTracker, candidates
from faxflow.ingest.workspace import ensure_folders
from faxflow.templates.errors import (ConfigError, ExitCode, FaxflowError, ImageTooLarge, InputError,
                                      TransientError)

LOCK_NAME = "faxflow-batch.lock"
MAX_BACKOFF_S = 60.0

Processor = Callable[..., Any]  # (path, *, archived_path=...) -> DocumentResult
ProcessorFactory = Callable[[Settings], Processor]


# ----------------------------------------------------------------------------- errors --

class WorkspaceBusy(FaxflowError):
    """Another batch holds the workspace lock."""

    code = "busy"
    permanent = False
    exit_code = ExitCode.CANNOT_RUN


class UnexpectedError(FaxflowError):
    """A bug or an unforeseen condition while reading one file: that file fails, the run goes on."""

    code = "unexpected"


class DatabaseUnusable(FaxflowError):
    code = "database"
    permanent = False
    exit_code = ExitCode.CANNOT_RUN


class FileStillChanging(TransientError):
    code = "still_writing"


def classify(exc: BaseException, name: str) -> FaxflowError:
    """Map any exception from reading one file to a FaxflowError (the one place that decides
    transient vs permanent for exceptions that are not ours)."""
    if isinstance(exc, FaxflowError):
        return exc
    if is_locked_error(exc):
        return db_transient(exc)
    if isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc):
        # The same content stored by another process at the same moment: the retry sees it
        # as a duplicate.
        return TransientError(f"{name}: stored by another process at the same moment ({exc})",
                              f"「{name}」は同時に別の処理で保存されました", file=name)
    if isinstance(exc, sqlite3.DatabaseError):
        return DatabaseUnusable(f"the database cannot be written ({exc})",
                                f"データベースに書き込めません（{exc}）")
    if isinstance(exc, PermissionError) or getattr(exc, "winerror", None) in (32, 33):
        return TransientError(f"{name}: the file is in use by another program ({exc})",
                              f"「{name}」は他のプログラムが使用中です", file=name)
    if isinstance(exc, MemoryError):
        return ImageTooLarge(f"{name}: not enough memory to read this file (is it huge?)",
                             f"「{name}」は大きすぎて読み込めません（メモリ不足）", file=name)
    text = f"{type(exc).__name__}: {exc}"
    return UnexpectedError(
        f"unexpected error while reading the file ({text})",
        f"予期しないエラーのため「{name}」を処理できませんでした。担当者に連絡してください（{text}）",
        file=name,
    )


def _gave_up(error: FaxflowError, name: str, attempts: int) -> FaxflowError:
    err = FaxflowError(f"{error.en} - gave up after {attempts} attempt(s)",
                       f"{error.ja}（{attempts} 回試しましたが処理できませんでした）", file=name)
    err.code = error.code
    return err


def _backoff(settings: Settings, attempt: int) -> float:
    return min(MAX_BACKOFF_S, settings.retry_backoff * (2 ** max(0, attempt - 1)))


# ------------------------------------------------------------------------ one claim --

def default_processor_factory(settings: Settings) -> Processor:
    """The real pipeline: one ``Pipeline`` per worker process."""
    from faxflow.ingest.pipeline import Pipeline

    return Pipeline(settings).process


def _accepts_archived(processor: Processor) -> bool:
    try:
        params = inspect.signature(processor).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "archived_path" or p.kind is p.VAR_KEYWORD for p in params)


def _changed(claim: Claim) -> bool:
    try:
        st = claim.path.stat()
    except OSError:
        return False
    return st.st_size != claim.size or st.st_mtime_ns != claim.mtime_ns


def handle_claim(claim: Claim, processor: Processor, queue: FileQueue, settings: Settings, *,
                 accepts_archived: bool = True, sleep: Callable[[float], None] = time.sleep) -> FileOutcome:
    """Read one claimed file with retries, then archive it or set it aside. Never raises
    for a problem of the file; returns what happened."""
    log = get_logger()
    t0 = time.monotonic()
    name = claim.original_name
    attempts = queue.start(claim)
    if attempts is None or not claim.path.exists():
        # finished already (its worker's result was lost with a crashed pool), or taken over
        return queue.finished(claim) or FileOutcome(name=name, state="abandoned", status="abandoned",
                                                    file_id=claim.id)

    def failed(error: FaxflowError, n: int, sha: str | None = None) -> FileOutcome:
        dest = queue.fail(claim, error, attempts=n, duration_s=time.monotonic() - t0, sha256=sha)
        return FileOutcome(name=name, state="failed", status="failed", file_id=claim.id,
                           sha256=sha or claim.sha256, dest=dest, attempts=n,
                           duration_s=time.monotonic() - t0, error_code=error.code,
                           error_en=str(error), error_ja=error.ja)

    if attempts > settings.max_attempts:  # earlier attempts died with the process
        return failed(interrupted_error(name, attempts - 1), attempts - 1)
    archive_dest = queue.reserve_archive(claim)
    while True:
        error: FaxflowError | None = None
        try:
            if accepts_archived:
                result = processor(claim.path, archived_path=queue.rel(archive_dest))
            else:
                result = processor(claim.path)
            if result.status == "failed":
                raise result.error or InputError("the file could not be read", "ファイルを読み取れませんでした",
                                                 file=name)
        except Exception as exc:  # noqa: BLE001 - every problem of one file is handled here
            error = classify(exc, name)
            if isinstance(error, UnexpectedError):
                log.error("%s: unexpected error", name, exc_info=exc)
            if error.permanent and error.exit_code != ExitCode.CANNOT_RUN and _changed(claim):
                error = FileStillChanging(f"{name}: the file changed while it was read (still being copied?)",
                                          f"「{name}」は読み込み中に変更されました（コピー中の可能性）", file=name)
        if error is None:
            break
        if error.exit_code == ExitCode.CANNOT_RUN and error.permanent:
            log.error("%s: %s - the file is put back into the inbox", name, error)
            return queue.release(claim, error)
        if not error.permanent and attempts < settings.max_attempts:
            delay = _backoff(settings, attempts)
            log.warning("%s: %s - retrying in %.1f s (attempt %d of %d)", name, error, delay, attempts,
                        settings.max_attempts)
            sleep(delay)
            if isinstance(error, FileStillChanging):
                try:
                    st = claim.path.stat()
                    claim = Claim(**{**claim.__dict__, "size": st.st_size, "mtime_ns": st.st_mtime_ns})
                except OSError:
                    pass
            attempts = queue.start(claim)
            if attempts is None or not claim.path.exists():
                return FileOutcome(name=name, state="abandoned", status="abandoned", file_id=claim.id)
            continue
        if error.exit_code == ExitCode.CANNOT_RUN:
            log.error("%s: %s - the file is put back into the inbox", name, error)
            return queue.release(claim, error)
        if not error.permanent:
            error = _gave_up(error, name, attempts)
        return failed(error, attempts)

    src = getattr(result, "source", None)
    sha = src.sha256 if src is not None else claim.sha256
    pages, fields, flagged = result.pages, result.fields, result.flagged
    flagged_fields = iter_flagged(result.records)
    status = result.status
    state = "done"
    if status == "duplicate":
        state = "duplicate"
        if attempts > 1 and not queue.done_elsewhere(sha, claim.id):
            # An earlier attempt stored it and then died before moving the file.
            doc = queue.stored_document(sha) if sha else None
            state, status = "done", (doc["status"] if doc is not None else "ok")
            pages = int(doc["page_count"]) if doc is not None else 0
    duration = time.monotonic() - t0
    dest = queue.archive(claim, archive_dest, state=state, outcome=status, attempts=attempts,
                         duration_s=duration, pages=pages, fields=fields, flagged=flagged,
                         document_id=getattr(result, "document_id", None), sha256=sha)
    return FileOutcome(name=name, state=state, status=status, file_id=claim.id, sha256=sha, dest=dest,
                       pages=pages, fields=fields, flagged=flagged, duration_s=duration, attempts=attempts,
                       flagged_fields=flagged_fields)


class _Worker:
    """What one process needs to handle claims: its pipeline and its database connection."""

    def __init__(self, settings: Settings, factory: ProcessorFactory):
        self.settings = settings
        self.processor = factory(settings)
        # The first file should not pay for lazy set-up (models, references): a pipeline that
        # offers warm_up() gets it here, while the worker is starting.
        warm_up = getattr(getattr(self.processor, "__self__", None), "warm_up", None)
        if callable(warm_up):
            warm_up()
        self.accepts_archived = _accepts_archived(self.processor)
        self.queue = FileQueue.open(settings)
        self.busy = threading.Lock()
        self.orphaned = False
        self.current: Claim | None = None
        self._beat = threading.Event()
        threading.Thread(target=self._heartbeat, daemon=True, name="faxflow-heartbeat").start()

    def _heartbeat(self) -> None:
        """While a file is being read, tell the database every stale_after/10 seconds."""
        every = max(1.0, min(60.0, self.settings.stale_after / 10))
        queue: FileQueue | None = None
        while not self._beat.wait(every):
            claim = self.current
            if claim is None:
                continue
            try:
                queue = queue or FileQueue.open(self.settings)  # its own connection (own thread)
                queue.heartbeat(claim)
            except Exception:  # noqa: BLE001 - a missed beat only matters after stale_after
                get_logger().debug("heartbeat failed", exc_info=True)

    def close(self) -> None:
        self._beat.set()
        closer = getattr(getattr(self.processor, "__self__", None), "close", None)
        if callable(closer):
            closer()
        self.queue.close()

    def work(self, claim: Claim) -> FileOutcome:
        with self.busy:
            if self.orphaned:
                return FileOutcome(name=claim.original_name, state="abandoned", status="abandoned",
                                   file_id=claim.id)
            self.current = claim
            try:
                return handle_claim(claim, self.processor, self.queue, self.settings,
                                    accepts_archived=self.accepts_archived)
            except Exception as exc:  # noqa: BLE001 - archiving/moving failed: report, keep going
                get_logger().exception("%s: could not finish the file", claim.original_name)
                err = classify(exc, claim.original_name)
                return FileOutcome(name=claim.original_name, state="failed", status="error", file_id=claim.id,
                                   sha256=claim.sha256, dest=self.queue.rel(claim.path), error_code=err.code,
                                   error_en=f"could not finish the file, it stays in processing/ ({err.en})",
                                   error_ja=f"ファイルの後処理ができませんでした（processing/ に残っています）: {err.ja}",
                                   fatal=err.exit_code == ExitCode.CANNOT_RUN)
            finally:
                self.current = None


# ---------------------------------------------------------------- worker processes --

_WORKER: _Worker | None = None
_INIT_ERROR: tuple[str, str] | None = None


def _init_worker(settings: Settings, factory: ProcessorFactory, log_queue: Any, parent_pid: int) -> None:
    global _WORKER, _INIT_ERROR
    os.environ["OMP_THREAD_LIMIT"] = "1"
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the parent decides (finish the current file)
    if log_queue is not None:
        worker_logging(log_queue)
    try:
        _WORKER = _Worker(settings, factory)
    except BaseException as exc:  # noqa: BLE001 - reported by _ping as "cannot run"
        err = exc if isinstance(exc, FaxflowError) else None
        _INIT_ERROR = (str(exc) if err else f"cannot start a worker: {type(exc).__name__}: {exc}",
                       err.ja if err else f"処理を開始できません: {type(exc).__name__}: {exc}")
        return
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True, name="faxflow-parent").start()


def _parent_gone(parent_pid: int) -> bool:
    if os.name == "nt":  # pragma: no cover
        return not pid_alive(parent_pid)
    return os.getppid() != parent_pid


def _watch_parent(parent_pid: int) -> None:
    """If the parent dies (killed), finish the current file and exit: no orphan workers."""
    while True:
        time.sleep(0.5)
        if _parent_gone(parent_pid) and _WORKER is not None:
            _WORKER.orphaned = True
            with _WORKER.busy:
                os._exit(0)


def _ping() -> tuple[str, str] | None:
    return _INIT_ERROR


def _work(claim: Claim) -> FileOutcome:
    if _WORKER is None:
        en, ja = _INIT_ERROR or ("worker not initialised", "処理の準備ができていません")
        return FileOutcome(name=claim.original_name, state="abandoned", status="abandoned", file_id=claim.id,
                           error_en=en, error_ja=ja, fatal=True)
    return _WORKER.work(claim)


class CannotRun(FaxflowError):
    code = "cannot_run"
    permanent = True
    exit_code = ExitCode.CANNOT_RUN


class Runner:
    """Runs :func:`handle_claim` in ``jobs`` worker processes (or in this process with
    ``in_process=True``: tests, debugging)."""

    def __init__(self, settings: Settings, *, jobs: int, processor_factory: ProcessorFactory | None = None,
                 in_process: bool = False):
        self.settings = settings
        self.jobs = max(1, int(jobs))
        self.factory = processor_factory or default_processor_factory
        self.in_process = in_process
        self._ctx = mp.get_context("spawn")
        self._pool: cf.ProcessPoolExecutor | None = None
        self._local: _Worker | None = None
        self._log_queue: Any = None
        self._listener: Any = None

    def start(self) -> None:
        """Start the workers and wait until each has its pipeline; CannotRun if it cannot be built."""
        os.environ.setdefault("OMP_THREAD_LIMIT", "1")
        if self.in_process:
            try:
                self._local = _Worker(self.settings, self.factory)
            except FaxflowError as exc:
                raise CannotRun(str(exc), exc.ja) from exc
            except Exception as exc:
                raise CannotRun(f"cannot start: {type(exc).__name__}: {exc}",
                                f"処理を開始できません: {type(exc).__name__}: {exc}") from exc
            return
        if self._log_queue is None:
            self._log_queue = self._ctx.Queue()
            self._listener = start_listener(self._log_queue)
        self._pool = cf.ProcessPoolExecutor(
            max_workers=self.jobs, mp_context=self._ctx, initializer=_init_worker,
            initargs=(self.settings, self.factory, self._log_queue, os.getpid()))
        pings = [self._pool.submit(_ping) for _ in range(self.jobs)]
        try:
            errors = [f.result() for f in pings]
        except BrokenProcessPool as exc:
            self.shutdown()
            raise CannotRun("a worker process died while starting", "処理用のプロセスが起動中に終了しました") from exc
        for err in errors:
            if err is not None:
                self.shutdown()
                raise CannotRun(err[0], err[1])

    def submit(self, claim: Claim) -> cf.Future:
        if self.in_process:
            fut: cf.Future = cf.Future()
            assert self._local is not None
            fut.set_result(self._local.work(claim))
            return fut
        if self._pool is None:  # a restart after a dead worker failed earlier: try again
            self.start()
        assert self._pool is not None
        return self._pool.submit(_work, claim)

    def restart(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        self.start()

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._local is not None:
            self._local.close()
            self._local = None
        if self._listener is not None:
            self._listener.stop()
            self._listener = None
        if self._log_queue is not None:
            self._log_queue.close()
            self._log_queue = None


class Dispatcher:
    """Claims files when a worker is free, keeps two copies of the same content from being
    read at once, and recovers from a dead worker process."""

    def __init__(self, queue: FileQueue, runner: Runner, *, run_id: int | None,
                 on_outcome: Callable[[FileOutcome], None]):
        self.queue = queue
        self.runner = runner
        self.run_id = run_id
        self.on_outcome = on_outcome
        self.inflight: dict[cf.Future, Claim] = {}
        self.shas: Counter[str] = Counter()
        self.deferred: list[Claim] = []
        self.suspects: deque[Claim] = deque()
        self.isolating: set[cf.Future] = set()  # a suspect being read alone

    @property
    def capacity(self) -> int:
        return self.runner.jobs + (0 if self.runner.in_process else 1)

    def has_capacity(self) -> bool:
        if self.suspects or self.isolating:
            return False
        return len(self.inflight) + len(self.deferred) < self.capacity

    @property
    def busy(self) -> bool:
        return bool(self.inflight or self.deferred or self.suspects)

    def offer_path(self, path: Path) -> str:
        """'claimed', 'gone' (taken by another process) or 'locked' (try again later)."""
        try:
            claim = self.queue.claim(path, run_id=self.run_id)
        except ConfigError:
            raise
        except TransientError as exc:
            get_logger().debug("%s: not taken yet: %s", path.name, exc)
            return "locked"
        if claim is None:
            return "gone"
        self.offer_claim(claim)
        return "claimed"

    def offer_claim(self, claim: Claim) -> None:
        if claim.sha256 and self.shas[claim.sha256] > 0:
            self.deferred.append(claim)  # same content being read now: wait, then it is a duplicate
            return
        self._submit(claim)

    def _submit(self, claim: Claim, *, alone: bool = False) -> None:
        try:
            fut = self.runner.submit(claim)
        except BrokenProcessPool:
            # A worker died since the last collect: this claim waits with the others.
            self.suspects.append(claim)
            return
        except BaseException:
            self.suspects.appendleft(claim)  # kept: put back by release_pending() if we stop
            raise
        self.inflight[fut] = claim
        if alone:
            self.isolating.add(fut)
        if claim.sha256:
            self.shas[claim.sha256] += 1

    def _pump(self) -> None:
        if self.suspects and not self.inflight:
            self._submit(self.suspects.popleft(), alone=True)  # one at a time: a crash names its file
        if self.deferred and not self.suspects:
            for claim in list(self.deferred):
                if not (claim.sha256 and self.shas[claim.sha256] > 0):
                    self.deferred.remove(claim)
                    self._submit(claim)

    def collect(self, timeout: float) -> list[FileOutcome]:
        """Wait up to ``timeout`` for files to finish; report each one."""
        self._pump()
        if not self.inflight:
            return []
        done, _ = cf.wait(list(self.inflight), timeout=timeout, return_when=cf.FIRST_COMPLETED)
        outcomes: list[FileOutcome] = []
        broken: list[Claim] = []
        for fut in done:
            claim = self.inflight.pop(fut)
            self.isolating.discard(fut)
            if claim.sha256:
                self.shas[claim.sha256] -= 1
            try:
                outcomes.append(fut.result())
            except BrokenProcessPool:
                broken.append(claim)
            except Exception as exc:  # noqa: BLE001 - should not happen: handle_claim catches all
                get_logger().exception("%s: worker error", claim.original_name)
                err = classify(exc, claim.original_name)
                outcomes.append(FileOutcome(name=claim.original_name, state="failed", status="error",
                                            file_id=claim.id, error_code=err.code, error_en=str(err),
                                            error_ja=err.ja))
        if broken:
            rest = list(self.inflight.values())
            self.inflight.clear()
            self.isolating.clear()
            self.shas.clear()
            names = ", ".join(c.original_name for c in broken + rest)
            get_logger().warning("a worker process died (crash or out of memory) while reading: %s; "
                                 "these files are tried again one at a time", names)
            self.suspects.extend(broken + rest)
        for o in outcomes:
            self.on_outcome(o)
        if broken:
            self.runner.restart()  # CannotRun: the suspects wait (released if the run stops)
        self._pump()
        return outcomes

    def release_pending(self) -> None:
        """Stopping: claims not started yet go back to the inbox."""
        for claim in list(self.deferred) + list(self.suspects):
            try:
                self.on_outcome(self.queue.release(claim))
            except Exception:  # noqa: BLE001 - recovery takes them next time
                get_logger().exception("%s: could not put the file back", claim.original_name)
        self.deferred.clear()
        self.suspects.clear()

    def drain(self, poll: float = 0.5) -> None:
        while self.inflight:
            self.collect(poll)


# ------------------------------------------------------------------------------- lock --

class WorkspaceLock:
    """An OS file lock on ``faxflow-batch.lock`` (released by the OS if the process dies).

    The file stays; it says who holds it (pid, host, since). POSIX: ``flock``; Windows:
    ``msvcrt.locking`` on a byte past the text.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._fh: Any = None

    def _try(self, fh: Any) -> bool:
        if os.name == "nt":  # pragma: no cover
            import msvcrt

            fh.seek(1 << 20)
            try:
                msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
                return True
            except OSError:
                return False
        import fcntl

        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            return False

    def acquire(self, wait: float) -> None:
        deadline = time.monotonic() + max(0.0, wait)
        fh = open(self.path, "a+b")
        while not self._try(fh):
            if time.monotonic() >= deadline:
                fh.close()
                holder = self.holder() or "unknown process"
                raise WorkspaceBusy(
                    f"another 'faxflow run' is still running on this workspace ({holder}); waited {wait:.0f} s. "
                    f"Nothing was done. If no batch is running, the lock file {self.path} is stale only if "
                    "its process is gone - the OS releases the lock when a process ends",
                    f"この作業フォルダでは別の faxflow run が実行中です（{holder}）。{wait:.0f} 秒待ちましたが終わらない"
                    "ため、今回は何もせずに終了します。",
                )
            time.sleep(0.2)
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {HOST} since {now_iso()}\n".encode())
        fh.flush()
        self._fh = fh

    def holder(self) -> str | None:
        try:
            text = self.path.read_bytes()[:200].decode("utf-8", "replace").strip("\0\r\n ")
            return text or None
        except OSError:
            return None

    def release(self) -> None:
        if self._fh is None:
            return
        try:
            if os.name == "nt":  # pragma: no cover
                import msvcrt

                self._fh.seek(1 << 20)
                msvcrt.locking(self._fh.fileno(), msvcrt.LK_UNLCK, 1)
            else:
                import fcntl

                fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
        finally:
            self._fh.close()
            self._fh = None


# ---------------------------------------------------------------------------- signals --

@contextlib.contextmanager
def stop_on_signals(stop: threading.Event, *, wake: threading.Event | None = None) -> Iterator[None]:
    """SIGTERM or the first Ctrl-C set ``stop`` (finish the current files, then end);
    a second Ctrl-C raises KeyboardInterrupt. Only in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    log = get_logger()

    def on_signal(signum: int, frame: Any) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        log.info("stopping after the current file(s) (%s)", signal.Signals(signum).name)
        stop.set()
        if wake is not None:
            wake.set()

    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in old:
        signal.signal(s, on_signal)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def tick_for(settings: Settings) -> float:
    """How often tracked files are re-checked."""
    return max(0.05, min(0.25, settings.stable_seconds / 8))


# ------------------------------------------------------------------------------ batch --

def run_batch(settings: Settings, *, jobs: int | None = None, processor_factory: ProcessorFactory | None = None,
              progress: Any = None, export: bool | None = None, lock_wait: float | None = None,
              stop: threading.Event | None = None, in_process: bool = False,
              handle_signals: bool = True) -> BatchReport:
    """Process every file waiting in the inbox; return the report (its ``return_code``
    is the exit code). Raises ``WorkspaceBusy``/``ConfigError`` (exit 2) only when
    nothing was started; anything later ends up in the report."""
    jobs = max(1, jobs or settings.jobs)
    log = get_logger()
    report = BatchReport(home=Path(settings.home), jobs=jobs)
    ensure_folders(settings)
    lock = WorkspaceLock(Path(settings.home) / LOCK_NAME)
    lock.acquire(settings.lock_wait if lock_wait is None else lock_wait)
    undo_logging = ensure_file_logging(Path(settings.logs))
    stop = stop or threading.Event()
    queue: FileQueue | None = None
    runner: Runner | None = None
    dispatcher: Dispatcher | None = None
    run_id: int | None = None
    sig = stop_on_signals(stop) if handle_signals else contextlib.nullcontext()

    def on_outcome(o: FileOutcome) -> None:
        if o.state == "abandoned":
            return
        report.add(o)
        log_outcome(o)
        if progress is not None:
            progress.advance(o)

    try:
        with sig:
            queue = FileQueue.open(settings)
            run_id = queue.start_run("batch")
            log.info("batch started: inbox %s, %d worker(s)", settings.inbox, jobs)
            runner = Runner(settings, jobs=jobs, processor_factory=processor_factory, in_process=in_process)
            try:
                runner.start()
            except FaxflowError as exc:
                log.error("cannot run: %s", exc)
                report.fail(str(exc), exc.ja)
                runner = None
                return report
            dispatcher = Dispatcher(queue, runner, run_id=run_id, on_outcome=on_outcome)
            recovered, set_aside = queue.recover()
            report.recovered = len(recovered) + len(set_aside)
            waiting = candidates(Path(settings.inbox))
            if progress is not None:
                progress.start(len(waiting) + report.recovered)
            for o in set_aside:
                on_outcome(o)
            for claim in recovered:
                dispatcher.offer_claim(claim)
            _batch_loop(settings, dispatcher, waiting, report, stop)
            if stop.is_set():
                report.interrupted = True
            if stop.is_set() or report.fatal_en is not None:
                dispatcher.release_pending()
            dispatcher.drain()
    except KeyboardInterrupt:
        report.interrupted = True
        log.warning("interrupted: files being read stay in processing/ and are taken over by the next run")
    except FaxflowError as exc:
        log.error("cannot run: %s", exc)
        report.fail(str(exc), exc.ja)
    except Exception as exc:  # noqa: BLE001 - a bug: exit 2 with the report, not a bare traceback (1)
        log.exception("the batch stopped on an unexpected error")
        report.fail(f"unexpected error: {type(exc).__name__}: {exc}",
                    f"予期しないエラーで一括処理が止まりました: {type(exc).__name__}: {exc}")
    finally:
        if dispatcher is not None and (dispatcher.deferred or dispatcher.suspects):
            dispatcher.release_pending()  # claimed but never read: back to the inbox
        if runner is not None:
            try:
                runner.shutdown()
            except BaseException:  # noqa: BLE001
                log.exception("could not stop the worker processes cleanly")
        if progress is not None:
            progress.stop()
        if (settings.export_after_run if export is None else export) and report.fatal_en is None \
                and not report.interrupted:
            export_new_rows(settings, report)
        report.finish()
        try:
            report.write(settings.logs)
        except OSError as exc:
            log.error("could not write the batch report: %s", exc)
        log.info("batch finished: %s; %s", report.verdict(),
                 ", ".join(f"{k} {v}" for k, v in report.counts.items()))
        if queue is not None:
            try:
                if run_id is not None:
                    queue.finish_run(run_id, exit_code=int(report.return_code), summary=report.as_dict(),
                                     report_path=queue.rel(report.path) if report.path else None,
                                     message=report.fatal_en)
            except Exception:  # noqa: BLE001
                log.exception("could not record the end of the batch")
            queue.close()
        lock.release()
        undo_logging()
    return report


def _batch_loop(settings: Settings, dispatcher: Dispatcher, waiting: list[Path], report: BatchReport,
                stop: threading.Event) -> None:
    tracker = StabilityTracker(settings.stable_seconds)
    ready: deque[Path] = deque()
    give_up_at = time.monotonic() + max(30.0, settings.stable_seconds * 10)
    tick = tick_for(settings)
    while not stop.is_set() and report.fatal_en is None:
        if waiting:
            for p in tracker.poll(waiting):
                tracker.forget(p)
                ready.append(p)
            waiting = [p for p in waiting if p in tracker]
            if waiting and time.monotonic() > give_up_at:
                for p in waiting:
                    get_logger().warning("%s: still being written (or locked); left for the next run", p.name)
                    report.skipped.append(p.name)
                waiting = []
        while ready and dispatcher.has_capacity() and report.fatal_en is None:
            p = ready.popleft()
            try:
                taken = dispatcher.offer_path(p)
            except ConfigError as exc:
                report.fail(str(exc), exc.ja)
                break
            except Exception as exc:  # noqa: BLE001 - e.g. the database is unusable
                err = classify(exc, p.name)
                get_logger().error("%s: cannot take the file: %s", p.name, err)
                if err.exit_code == ExitCode.CANNOT_RUN:
                    report.fail(str(err), err.ja)
                    break
                taken = "locked"
            if taken == "locked":
                waiting.append(p)  # tracked again until it can be opened, or the give-up time
        if not (waiting or ready or dispatcher.busy):
            return
        if dispatcher.inflight:
            dispatcher.collect(tick)
        else:
            dispatcher.collect(0)
            stop.wait(tick)


# ----------------------------------------------------------------------------- export --

def export_new_rows(settings: Settings, report: BatchReport | None = None) -> list[str]:
    """The scheduled CSV hand-off: one file per kind in exports/, rows not handed off before
    (``[export] only_new``), marked as handed off. A kind without new rows writes no file."""
    from faxflow.export.csv_out import export_csv

    log = get_logger()
    stamp = dt.datetime.now().strftime("%Y%m%d_%H%M%S")
    lines: list[str] = []
    try:
        for kind in settings.export_kinds:
            out = Path(settings.exports) / f"{kind}_{stamp}.csv"
            res = export_csv(settings.db_path, out, kind=kind, encoding=settings.export_encoding,
                             statuses=settings.export_statuses, only_new=settings.export_only_new,
                             mark_exported=settings.export_only_new)
            if res.rows == 0 and settings.export_only_new:
                out.unlink(missing_ok=True)
                lines.append(f"{kind}: no new rows")
            else:
                extra = f", {res.skipped} left out (status)" if res.skipped else ""
                lines.append(f"{kind}: {res.rows} row(s){extra} -> {out}")
    except FaxflowError as exc:
        log.error("export failed: %s", exc)
        if report is not None:
            report.fail(f"export failed: {exc}", f"CSV 出力に失敗しました: {exc.ja}")
        lines.append(f"export failed: {exc}")
    for line in lines:
        log.info("export %s", line)
    if report is not None:
        report.exports.extend(lines)
    return lines


__all__ = ["CannotRun", "Dispatcher", "LOCK_NAME", "Runner", "WorkspaceBusy", "WorkspaceLock", "classify",
           "default_processor_factory", "export_new_rows", "handle_claim", "run_batch", "stop_on_signals"]
