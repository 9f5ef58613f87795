"""`make bench`: run every benchmark script in this folder with its defaults, one after another.

    .venv/bin/python benchmarks/run_all.py [NAME ...]   # e.g. datagen_throughput

Each script prints its own ratios against the alternative it measures in the same run; this
runner only sequences them and reports which failed (exit 1 if any did).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(names: list[str]) -> int:
    scripts = sorted(p for p in HERE.glob("*.py") if p.name != Path(__file__).name)
    if names:
        unknown = sorted(set(names) - {p.stem for p in scripts})
        if unknown:
            print(f"error: no benchmark named {', '.join(unknown)} (have: {', '.join(p.stem for p in scripts)})",
                  file=sys.stderr)
            return 2
        scripts = [p for p in scripts if p.stem in names]
    failed = []
    for script in scripts:
        print(f"\n=== {script.name} ===", flush=True)
        t0 = time.time()
        rc = subprocess.call([sys.executable, str(script)])
        print(f"--- {script.name}: exit {rc}, {time.time() - t0:.0f} s", flush=True)
        if rc != 0:
            failed.append(script.name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
