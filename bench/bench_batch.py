"""Throughput of the nightly batch: `faxflow run --jobs 2` vs `--jobs 1`.

Run by hand (not part of the tests):

    OMP_THREAD_LIMIT=1 .venv/bin/python bench/bench_batch.py             # 24 one-page FAXes
    OMP_THREAD_LIMIT=1 .venv/bin/python bench/bench_batch.py --files 48

Builds N files from the committed one-page FAX scans (each with different trailing
bytes, so none is a duplicate), runs the real `faxflow run` on a fresh workspace for
each --jobs value, and prints wall time (what the scheduler sees, worker start-up
included) and the steady rate (files done per second between the first and the last
file). Target: --jobs 2 >= 1.7x --jobs 1 on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SCANS = [ROOT / "samples" / "scans" / "fax_fine_yamada.tif",
                 ROOT / "samples" / "scans" / "fax_standard_kawada.tif"]


def run_once(n: int, jobs: int, scans: list[bytes], base: Path) -> dict:
    from faxflow.ingest.workspace import init_workspace

    home = base / f"jobs{jobs}"
    init_workspace(home)
    (home / "faxflow.toml").write_text("[watch]\nstable_seconds = 0\n", encoding="utf-8")
    for i in range(n):
        (home / "inbox" / f"FAX {i:03d}.tif").write_bytes(scans[i % len(scans)] + b"\0" * (i + 1))
    old = time.time() - 60
    for p in (home / "inbox").iterdir():
        os.utime(p, (old, old))
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    env.pop("FAXFLOW_HOME", None)
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "faxflow", "run", "--home", str(home), "--jobs", str(jobs),
                        "--quiet"], capture_output=True, text=True, env=env)
    wall = time.monotonic() - t0
    con = sqlite3.connect(home / "faxflow.db")
    ends = sorted(row[0] for row in con.execute("SELECT updated_ts FROM files WHERE state IN ('done', 'failed')"))
    outcomes = dict(con.execute("SELECT coalesce(outcome, state), count(*) FROM files GROUP BY 1").fetchall())
    rate = (len(ends) - 1) / (ends[-1] - ends[0]) if len(ends) > 1 and ends[-1] > ends[0] else float("nan")
    return {"jobs": jobs, "exit": r.returncode, "wall": wall, "rate": rate, "outcomes": outcomes,
            "summary": r.stdout.strip()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=24)
    ap.add_argument("--scans", type=Path, nargs="+", default=DEFAULT_SCANS)
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    scans = [p.read_bytes() for p in args.scans]
    base = Path(tempfile.mkdtemp(prefix="bench_batch_"))
    print(f"{args.files} files from {', '.join(p.name for p in args.scans)}; {os.cpu_count()} CPU(s); "
          f"workspaces in {base}")
    results = []
    for jobs in args.jobs:
        res = run_once(args.files, jobs, scans, base)
        results.append(res)
        print(f"--jobs {jobs}: exit {res['exit']}, wall {res['wall']:.1f} s "
              f"({args.files / res['wall']:.2f} files/s incl. start-up), steady {res['rate']:.2f} files/s, "
              f"outcomes {res['outcomes']}")
    if len(results) >= 2:
        a, b = results[0], results[-1]
        wall_x = a["wall"] / b["wall"]
        steady_x = b["rate"] / a["rate"]
        print(f"speed-up --jobs {b['jobs']} vs --jobs {a['jobs']}: wall {wall_x:.2f}x, steady {steady_x:.2f}x")
        verdict = "PASS" if wall_x >= 1.7 else "FAIL"
        print(f"target >= 1.7x (wall time): {verdict}")
        return 0 if verdict == "PASS" else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
