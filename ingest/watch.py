"""``faxflow watch``: process scans as they arrive in the inbox, until stopped.

The watcher is deliberately trivial. watchdog (inotify / ReadDirectoryChangesW /
FSEvents, or ``PollingObserver`` with ``--poll`` for network shares where change
notifications do not arrive) only *wakes* the loop; the loop lists the inbox itself
(so a missed event costs at most ``poll_interval``), asks the pure
:class:`~faxflow.ingest.stability.StabilityTracker` which files are complete, claims
them and hands them to the same worker processes and per-file handling as the batch.

* Files already waiting at start-up are processed too; files left in processing/ by a
  crash are taken over at start-up and every few minutes (``ingest/queue.py``).
* Everything is caught per file: a bad file ends in failed/ with NAME.error.txt, an
  unexpected error is logged, a dead worker process is replaced; the watcher goes on.
* SIGTERM or Ctrl-C: stop taking files, let the current ones finish, exit 0. A second
  Ctrl-C stops at once (the files being read are taken over by the next start).
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from faxflow.ingest.batch import Dispatcher, ProcessorFactory, Runner, classify, stop_on_signals, tick_for
from faxflow.ingest.logs import ensure_file_logging, get_logger, log_outcome
from faxflow.ingest.queue import FileQueue
from faxflow.ingest.report import FileOutcome
from faxflow.ingest.settings import Settings
from faxflow.ingest.stability import StabilityTracker, candidates, is_ignored
from faxflow.ingest.workspace import ensure_folders
from faxflow.templates.errors import ConfigError, ExitCode, FaxflowError

RECOVER_EVERY_S = 120.0  # look for abandoned claims this often while running
PAUSE_AFTER_FATAL_S = 60.0  # engine/database unusable: wait this long before taking files again


@dataclass
class WatchSummary:
    started: float = field(default_factory=time.time)
    counts: dict[str, int] = field(default_factory=dict)
    exit_code: int = 0

    def add(self, o: FileOutcome) -> None:
        key = o.state if o.state != "done" else o.status
        self.counts[key] = self.counts.get(key, 0) + 1


def make_observer(folder: Path, *, poll: bool, interval: float, wake: threading.Event) -> Any:
    """A watchdog observer that sets ``wake`` on any change in ``folder`` (not recursive)."""
    from watchdog.events import FileSystemEventHandler

    if poll:
        from watchdog.observers.polling import PollingObserver

        observer = PollingObserver(timeout=interval)
    else:
        from watchdog.observers import Observer

        observer = Observer()

    class Wake(FileSystemEventHandler):
        def on_any_event(self, event: Any) -> None:
            name = Path(str(getattr(event, "dest_path", "") or event.src_path)).name
            if not is_ignored(name):
                wake.set()

    observer.schedule(Wake(), str(folder), recursive=False)
    return observer


def watch(settings: Settings, *, processor_factory: ProcessorFactory | None = None, poll: bool | None = None,
          jobs: int | None = None, stop: threading.Event | None = None, in_process: bool = False,
          handle_signals: bool = True, on_ready: Callable[[], None] | None = None,
          recover_every: float = RECOVER_EVERY_S) -> WatchSummary:
    """Watch the inbox until ``stop`` is set (or SIGTERM / Ctrl-C). ``CannotRun`` /
    ``ConfigError`` if it cannot start (exit 2); afterwards nothing stops it but ``stop``."""
    log = get_logger()
    poll = settings.poll if poll is None else poll
    jobs = max(1, jobs or settings.jobs)
    stop = stop or threading.Event()
    ensure_folders(settings)
    inbox = Path(settings.inbox)
    summary = WatchSummary()
    undo_logging = ensure_file_logging(Path(settings.logs))
    queue = FileQueue.open(settings)
    run_id = queue.start_run("watch")
    runner = Runner(settings, jobs=jobs, processor_factory=processor_factory, in_process=in_process)
    wake = threading.Event()
    observer = None
    exit_code = ExitCode.OK
    try:
        runner.start()

        def on_outcome(o: FileOutcome) -> None:
            if o.state == "abandoned":
                return
            summary.add(o)
            log_outcome(o)

        dispatcher = Dispatcher(queue, runner, run_id=run_id, on_outcome=on_outcome)
        observer = make_observer(inbox, poll=poll, interval=settings.poll_interval, wake=wake)
        observer.start()
        sig = stop_on_signals(stop, wake=wake) if handle_signals else contextlib.nullcontext()
        with sig:
            log.info("watching %s (%s, a file is taken when unchanged for %.1f s, %d worker(s))", inbox,
                     "polling every %.1f s" % settings.poll_interval if poll else "change notifications",
                     settings.stable_seconds, jobs)
            _recover(queue, dispatcher, on_outcome)
            if on_ready is not None:
                on_ready()
            _watch_loop(settings, queue, dispatcher, stop, wake, on_outcome, recover_every)
            log.info("stopping: waiting for the file(s) being read")
            dispatcher.release_pending()
            dispatcher.drain()
    except KeyboardInterrupt:
        exit_code = ExitCode.INTERRUPTED
        log.warning("interrupted: files being read stay in processing/ and are taken over at the next start")
    except BaseException:
        exit_code = ExitCode.CANNOT_RUN
        raise
    finally:
        if observer is not None:
            observer.stop()
            observer.join(timeout=5)
        try:
            runner.shutdown()
        except BaseException:  # noqa: BLE001
            log.exception("could not stop the worker processes cleanly")
        try:
            queue.finish_run(run_id, exit_code=int(exit_code), summary=summary.counts)
        except Exception:  # noqa: BLE001
            log.exception("could not record the end of the watcher")
        queue.close()
        summary.exit_code = int(exit_code)
        log.info("watcher stopped: %s", ", ".join(f"{k} {v}" for k, v in sorted(summary.counts.items())) or
                 "no files")
        undo_logging()
    return summary


def _recover(queue: FileQueue, dispatcher: Dispatcher, on_outcome: Callable[[FileOutcome], None]) -> None:
    try:
        claims, set_aside = queue.recover()
    except Exception:  # noqa: BLE001 - try again later
        get_logger().exception("recovery of files left in processing/ failed; will try again")
        return
    for o in set_aside:
        on_outcome(o)
    for claim in claims:
        dispatcher.offer_claim(claim)


def _watch_loop(settings: Settings, queue: FileQueue, dispatcher: Dispatcher, stop: threading.Event,
                wake: threading.Event, on_outcome: Callable[[FileOutcome], None], recover_every: float) -> None:
    log = get_logger()
    inbox = Path(settings.inbox)
    tracker = StabilityTracker(settings.stable_seconds)
    tick = tick_for(settings)
    next_scan = 0.0
    next_recover = time.monotonic() + recover_every
    paused_until = 0.0
    while not stop.is_set():
        try:
            now = time.monotonic()
            if wake.is_set() or now >= next_scan:
                wake.clear()
                current = candidates(inbox)
                keep = set(current)
                for p in tracker.paths:
                    if p not in keep:
                        tracker.forget(p)
                ready = tracker.poll(current)
                next_scan = now + settings.poll_interval
            else:
                ready = tracker.poll() if len(tracker) else []
            if now >= paused_until:
                for p in ready:
                    if not dispatcher.has_capacity():
                        break
                    try:
                        taken = dispatcher.offer_path(p)
                    except ConfigError:
                        raise
                    except Exception as exc:  # noqa: BLE001 - database trouble etc.: log, pause, go on
                        err = classify(exc, p.name)
                        log.error("%s: cannot take the file: %s", p.name, err)
                        paused_until = time.monotonic() + min(PAUSE_AFTER_FATAL_S, settings.poll_interval * 5)
                        break
                    tracker.forget(p)  # locked: seen again at the next scan, and must be stable again
            outcomes = dispatcher.collect(0) if dispatcher.inflight else []
            if any(o.fatal for o in outcomes):
                log.error("pausing for %.0f s: the last error is not the file's fault (see above)",
                          PAUSE_AFTER_FATAL_S)
                paused_until = time.monotonic() + PAUSE_AFTER_FATAL_S
            if now >= next_recover:
                next_recover = now + recover_every
                _recover(queue, dispatcher, on_outcome)
            # Sleep until something happens: a file finishes, a change in the folder, or a tick.
            waiting_for_files = len(tracker) > 0
            timeout = tick if (waiting_for_files or dispatcher.busy) else settings.poll_interval
            ripe_in = tracker.next_ready_in(time.monotonic())
            if ripe_in is not None:
                timeout = min(timeout, ripe_in + 0.005)  # wake just when the next file is stable
            if dispatcher.inflight:
                for o in dispatcher.collect(min(timeout, tick)):
                    if o.fatal:
                        paused_until = time.monotonic() + PAUSE_AFTER_FATAL_S
            else:
                dispatcher.collect(0)
                wake.wait(timeout)
        except ConfigError:
            raise
        except FaxflowError as exc:  # e.g. the workers cannot be restarted: not a file's fault
            log.error("%s - trying again in %.0f s", exc, PAUSE_AFTER_FATAL_S)
            stop.wait(PAUSE_AFTER_FATAL_S)
        except Exception:  # noqa: BLE001 - the watcher never stops because of one file
            log.exception("watcher loop error; continuing")
            stop.wait(min(5.0, settings.poll_interval))
