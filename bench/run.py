"""Run every benchmark (``bench/bench_*.py``), print the ratios, and rewrite ``bench/RESULTS.md``.

Usage: ``make bench`` or ``python bench/run.py [--quick] [--only startup,build]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, torch {torch.__version__}, "
            f"{platform.system()} {platform.machine()}, {gpu}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--only", help="comma-separated bench names (startup, compose, build, ...)")
    args = parser.parse_args()
    scripts = sorted(HERE.glob("bench_*.py"))
    if args.only:
        wanted = set(args.only.split(","))
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in wanted]
    rows, failures = [], []
    for script in scripts:
        print(f"== {script.stem}", flush=True)
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            cmd = [sys.executable, str(script), "--json", out.name] + (["--quick"] if args.quick else [])
            done = subprocess.run(cmd, cwd=HERE)
            if done.returncode:
                failures.append(script.stem)
                continue
            rows.extend(json.loads(Path(out.name).read_text()))
    command = "python bench/run.py" + (" --quick" if args.quick else "") + (f" --only {args.only}" if args.only else "")
    write_results(rows, command, failures)
    return 1 if failures else 0


def write_results(rows: list[dict], command: str, failures: list[str]) -> None:
    path = HERE / "RESULTS.md"
    previous = path.read_text() if path.exists() else ""
    notes = previous.split("<!-- notes -->", 1)[1] if "<!-- notes -->" in previous else "\n"
    lines = ["# Benchmark results", "",
             f"Produced by `{command}` (also `make bench`) on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.",
             f"Machine: {machine()}.", "",
             "Each figure is a median, measured side by side with its baseline in the same run; "
             "ratio = value / baseline.", "",
             "| bench | figure | value | baseline | unit | ratio | target | |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        verdict = {True: "ok", False: "**missed**", None: ""}[r["passed"]]
        lines.append(f"| {r['bench']} | {r['name']} | {r['value']:.4g} | {r['baseline']:.4g} | {r['unit']} | "
                     f"{r['ratio']:.3f} | {r['target']} | {verdict} {r['note']} |")
    if failures:
        lines += ["", f"Failed to run: {', '.join(failures)}."]
    lines += ["", "<!-- notes -->" + notes.rstrip("\n"), ""]
    path.write_text("\n".join(lines))
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
