"""`make bench`: every benchmark, one after another, each printing its table and saving JSON.

.venv/bin/python bench/run.py [--quick] [streaming api models metrics]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = {
    "streaming": (["streaming.py"], ["--quick"]),
    "api": (["api.py"], ["--duration", "3", "--rounds", "1"]),
    "models": (["models.py"], []),
    "metrics": (["metrics.py"], ["--quick"]),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"which to run, of {', '.join(BENCHMARKS)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="fewer samples: a smoke run")
    args = parser.parse_args()
    unknown = set(args.names) - set(BENCHMARKS)
    if unknown:
        parser.error(f"no benchmark named {', '.join(sorted(unknown))}")
    failed = []
    for name in args.names or list(BENCHMARKS):
        script, quick_args = BENCHMARKS[name]
        command = [sys.executable, str(HERE / script[0]), *(quick_args if args.quick else [])]
        print(f"\n######## {name}: {' '.join(command[1:])}", flush=True)
        if subprocess.run(command, cwd=HERE.parent).returncode != 0:
            failed.append(name)
    if failed:
        print(f"\nbenchmarks that did not finish: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
