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
    import torch

    from mmzoo.sweep.results import cpu_name

    cpu = cpu_name()

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
    ran = sorted({r["bench"] for r in rows})
    write_results(merge_runs(rows, ran, command), failures)
    return 1 if failures else 0


def merge_runs(rows: list[dict], ran: list[str], command: str) -> dict:
    """This run's rows replace those of the same benches in ``results.json``; the others are kept, so
    ``--only compose`` refreshes one bench without dropping the rest. Each bench remembers its run."""
    path = HERE / "results.json"
    previous = json.loads(path.read_text()) if path.exists() else {"rows": [], "runs": {}}
    when = f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
    kept = [r for r in previous["rows"] if r["bench"] not in ran]
    runs = {name: run for name, run in previous["runs"].items() if name not in ran}
    runs.update({name: {"command": command, "when": when} for name in ran})
    merged = {"machine": machine(), "rows": sorted(kept + rows, key=lambda r: r["bench"]), "runs": runs}
    path.write_text(json.dumps(merged, indent=1) + "\n")
    return merged


def write_results(results: dict, failures: list[str]) -> None:
    path = HERE / "RESULTS.md"
    previous = path.read_text() if path.exists() else ""
    notes = previous.split("<!-- notes -->", 1)[1] if "<!-- notes -->" in previous else "\n"
    by_run: dict[tuple[str, str], list[str]] = {}
    for name, run in sorted(results["runs"].items()):
        by_run.setdefault((run["command"], run["when"]), []).append(name)
    produced = "; ".join(f"`{command}` on {when} ({', '.join(names)})" for (command, when), names in by_run.items())
    lines = ["# Benchmark results", "",
             f"Produced by {produced}; `make bench` runs them all.",
             f"Machine: {results['machine']}.", "",
             "Each figure is a median, measured side by side with its baseline in the same run; "
             "ratio = value / baseline.", "",
             "| bench | figure | value | baseline | unit | ratio | target | |", "|---|---|---|---|---|---|---|---|"]
    for r in results["rows"]:
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
