"""Inference: the eval path, and ``torch.compile`` against eager, on the demo's models and batch size.

1. ``mmzoo.train.evaluate.evaluate`` (what ``mmzoo eval`` runs: ``model.eval()``,
   ``torch.inference_mode()``, loss and metric sums per batch, merged at the end) over batches
   collated beforehand, against a hand-written ``inference_mode`` loop computing the same loss and
   accuracy.
2. The eval path (``model.eval()`` + ``torch.inference_mode()``) against the same eval-mode forward
   under plain ``torch.no_grad()``, per batch, in child processes with glibc's default malloc and
   with its thresholds fixed (``mallopt``): by default glibc unmaps large freed blocks and raises
   its mmap threshold as it goes, so the same forward pays page faults or not depending on the
   process's allocation history. The same children give the allocator's own effect on the eval
   forward and the training step.
3. Memory format and precision on this CPU: ``model.to(memory_format=torch.channels_last)`` and
   ``torch.autocast("cpu", torch.bfloat16)`` against the default (contiguous, fp32), for the eval
   forward and the training step.
4. ``torch.compile`` (what ``compile: true`` in a training config does for the training step, and
   ``compile: {eval: true}`` for evaluation) against eager, for the eval forward and for a training
   step (forward + backward), after warm-up, each in a child
   process with an empty inductor cache (a fresh TORCHINDUCTOR_CACHE_DIR), as on a first run.
   Compiling is paid once per process and again for each new input shape: the notes give the
   first call's seconds, the call on the eval split's partial last batch (a new shape: a
   dynamic-shape recompile, stopped when it runs past a limit), and the number of batches after
   which compiling has paid for itself.

Batches come from av-digits (test split for evaluation, train for the training step), batch size
32 as in the demo, one torch thread. Per-batch times are CPU time (this shared VM's wall clock
swings); compile times are wall clock. Medians of interleaved repeats, alternating their order.
"""

from __future__ import annotations

import copy
import json
import os
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
from common import Result, build_or_skip, interleaved, main

import mmzoo

HERE = Path(__file__).resolve().parent
BATCH = 32  # mmzoo.train.demo's --batch-size default


def models() -> dict[str, tuple[Callable[[], torch.nn.Module], list[str]]]:
    from mmzoo.train.demo import RUNS

    fused = RUNS["fused"]
    return {
        "digits-av-gated": (lambda: mmzoo.create_model("digits-av-gated"), []),
        "demo-fused": (  # effnet-melcnn-attention-cls as the demo trains it (64 px, MFCC, image frozen)
            lambda: mmzoo.create_model(fused["model"]["name"], **fused["model"]["overrides"]), fused["freeze"]),
    }


def batches(model, dataset, count: int, size: int = BATCH) -> list[dict]:
    return [model.preprocess([dataset[i] for i in range(b * size, (b + 1) * size)]) for b in range(count)]


def per_batch(fn: Callable[[dict], object], data: list[dict]) -> float:
    """CPU seconds per batch (one torch thread): page faults' system time counts, time spent
    descheduled on this shared VM does not."""
    start = time.process_time()
    for batch in data:
        fn(batch)
    return (time.process_time() - start) / len(data)


def timed_once(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def hand_eval(model, data: list[dict]) -> dict[str, float]:
    """What one writes by hand: inference_mode, loss and accuracy summed over batches."""
    loss = correct = count = 0.0
    with torch.inference_mode():
        for batch in data:
            out = model(batch)
            n = batch["target"].shape[0]
            loss += float(out.loss) * n
            correct += float((out.outputs.argmax(dim=1) == batch["target"]).sum())
            count += n
    return {"loss": loss / count, "accuracy": correct / count}


def eval_harness(model, args, label: str, data: list[dict], results: list[Result]) -> None:
    """evaluate() (what ``mmzoo eval`` and the trainer run) against a hand-written inference loop."""
    from mmzoo.train.distributed import DistContext
    from mmzoo.train.evaluate import evaluate

    model.eval()
    hand_eval(model, data[:2])
    keyed = [(b["target"].shape[0], b) for b in data]

    def cpu_seconds_per_batch(run) -> float:  # one thread: CPU time leaves out time spent descheduled
        start = time.process_time()
        run()
        return (time.process_time() - start) / len(data)

    t = interleaved({
        "evaluate": lambda: cpu_seconds_per_batch(lambda: evaluate(model, keyed, DistContext())),
        "hand": lambda: cpu_seconds_per_batch(lambda: hand_eval(model, data)),
    }, 5 if args.quick else 21)
    results.append(Result("inference", f"evaluate() vs hand-written inference loop, {label}", t["evaluate"] * 1e3,
                          t["hand"] * 1e3, "ms/batch", "<= 1.02",
                          note="loss + accuracy over ready batches, CPU time, alternating rounds"))


def mallopt_fixed() -> None:
    """glibc: serve allocations below 64 MiB from the heap and keep up to 256 MiB of freed memory,
    instead of the default moving mmap threshold (freed tensors unmapped, then faulted in again)."""
    import ctypes

    libc = ctypes.CDLL("libc.so.6")
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_mmap_threshold, 64 << 20)
    libc.mallopt(m_trim_threshold, 256 << 20)


def allocator_child(key: str, case: str, fixed: bool, quick: bool) -> None:
    """In a fresh child process (glibc's settings and history are per process): ms per batch of the
    eval forward under inference_mode and under no_grad, alternated (``case`` "eval"), or of the
    training step (``case`` "train"), as one JSON line."""
    if fixed:
        mallopt_fixed()
    torch.set_num_threads(1)
    build, frozen_parts = models()[key]
    torch.manual_seed(0)
    model = build()
    for name, module in model.named_modules():
        if name in frozen_parts:
            module.requires_grad_(False)
    if case == "train":
        data = batches(model, mmzoo.create_dataset("av-digits", split="train"), 3 if quick else 6)
        model.train()
        for name, module in model.named_modules():
            if name in frozen_parts:
                module.eval()

        def run(batch):
            model(batch).loss.backward()
            model.zero_grad(set_to_none=True)
    else:
        data = batches(model, mmzoo.create_dataset("av-digits", split="test"), 4 if quick else 8)
        model.eval()

        def forward(context):
            def run(batch):
                with context():
                    model(batch)
            return run

        runs = {"inference_mode": forward(torch.inference_mode), "no_grad": forward(torch.no_grad)}
        for run in runs.values():  # warm-up
            per_batch(run, data)
        times = interleaved({k: partial(per_batch, run, data) for k, run in runs.items()}, 3 if quick else 7)
        print(json.dumps({k: v * 1e3 for k, v in times.items()}), flush=True)
        return
    per_batch(run, data[:2])
    times = [per_batch(run, data) for _ in range(3 if quick else 7)]
    print(json.dumps({"train": statistics.median(times) * 1e3}), flush=True)


def allocator_results(key: str, args, results: list[Result]) -> None:
    figures = ("inference_mode", "no_grad", "train")
    runs: dict[bool, dict[str, list[float]]] = {False: {f: [] for f in figures}, True: {f: [] for f in figures}}
    for _ in range(1 if args.quick else 3):
        for case in ("eval", "train"):
            for fixed in (False, True):
                report = run_child(f"allocator_child({key!r}, {case!r}, {fixed!r}, {args.quick!r})", {}, 600)
                if not report or "stopped_after" in report:
                    print(f"allocator figure {case} for {key}: the child failed ({report})", file=sys.stderr)
                    return
                for figure, value in report.items():
                    runs[fixed][figure].append(value)
    t = {fixed: {c: statistics.median(v) for c, v in by_case.items()} for fixed, by_case in runs.items()}
    children = f"medians over {len(runs[False]['train'])} fresh processes; eval and training in separate ones"
    # `mmzoo eval` fixes the thresholds, so the target applies there; the default is the allocator's effect
    for fixed, how in ((False, "glibc default malloc"), (True, "malloc thresholds fixed (mmzoo eval)")):
        results.append(Result("inference", f"eval + inference_mode vs eval + no_grad, {how}, {key}",
                              t[fixed]["inference_mode"], t[fixed]["no_grad"], "ms/batch",
                              "<= 1.02" if fixed else "", note=f"batch {BATCH}, 1 thread; {children}"))
    for what, case in (("eval forward", "inference_mode"), ("train fwd+bwd", "train")):
        results.append(Result("inference", f"malloc thresholds fixed vs glibc default, {what}, {key}",
                              t[True][case], t[False][case], "ms/batch",
                              note=f"mallopt(M_MMAP_THRESHOLD 64 MiB, M_TRIM_THRESHOLD 256 MiB); {children}"))


def formats_and_precision(build, frozen_parts: list[str], args, label: str, eval_data: list[dict],
                          train_data: list[dict], results: list[Result]) -> None:
    """channels_last (``model.to(memory_format=torch.channels_last)``) and bf16 autocast against the
    default fp32 contiguous model, for the eval forward and the training step (fwd+bwd)."""
    torch.manual_seed(0)
    model = build()
    for name, module in model.named_modules():
        if name in frozen_parts:
            module.requires_grad_(False)
    channels_last = copy.deepcopy(model).to(memory_format=torch.channels_last)

    def train_mode(m):
        m.train()
        for name, module in m.named_modules():
            if name in frozen_parts:
                module.eval()

    def evaluate_with(m, bf16=False):
        def run(batch):
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                m(batch)
        return run

    def train_with(m, bf16=False):
        def run(batch):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = m(batch).loss
            loss.backward()
            m.zero_grad(set_to_none=True)
        return run

    cases = {
        "eval": (lambda: model.eval(), evaluate_with(model), eval_data),
        "eval channels_last": (lambda: channels_last.eval(), evaluate_with(channels_last), eval_data),
        "eval bf16": (lambda: model.eval(), evaluate_with(model, True), eval_data),
        "train": (lambda: train_mode(model), train_with(model), train_data),
        "train channels_last": (lambda: train_mode(channels_last), train_with(channels_last), train_data),
        "train bf16": (lambda: train_mode(model), train_with(model, True), train_data),
    }
    samples: dict[str, list[float]] = {key: [] for key in cases}
    for _ in range(1 + (3 if args.quick else 7)):  # the first round warms up
        for key, (mode, fn, data) in cases.items():
            mode()
            samples[key].append(per_batch(fn, data))
    t = {key: statistics.median(v[1:]) * 1e3 for key, v in samples.items()}
    for what, base in (("eval forward", "eval"), ("train fwd+bwd", "train")):
        results.append(Result("inference", f"channels_last vs contiguous {what}, {label}", t[f"{base} channels_last"],
                              t[base], "ms/batch", note="model.to(memory_format=torch.channels_last), CPU"))
        results.append(Result("inference", f"bf16 autocast vs fp32 {what}, {label}", t[f"{base} bf16"], t[base],
                              "ms/batch", note="torch.autocast('cpu', bfloat16)"))


def compile_child(key: str, mode: str, quick: bool) -> None:
    """In a child process: compile one model for ``mode`` ("eval" or "train") and print JSON lines:
    the first call's seconds, then eager and compiled ms per batch, then (eval) the partial batch."""
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    build, frozen_parts = models()[key]
    dataset = mmzoo.create_dataset("av-digits", split="test" if mode == "eval" else "train")
    torch.manual_seed(0)
    eager = build()
    for name, module in eager.named_modules():
        if name in frozen_parts:
            module.requires_grad_(False)
    data = batches(eager, dataset, (4 if quick else 8) if mode == "eval" else (3 if quick else 6))
    compiled = copy.deepcopy(eager)
    compiled.compile()  # what compile: true does (mmzoo.train.parallel.compile_model)
    for model in (eager, compiled):
        model.train(mode == "train")
        for name, module in model.named_modules():
            if name in frozen_parts:
                module.eval()

    def call(model):
        if mode == "eval":
            def run(batch):
                with torch.inference_mode():
                    return model(batch)
        else:
            def run(batch):
                model(batch).loss.backward()
                model.zero_grad(set_to_none=True)
        return run

    def say(**fields):
        print(json.dumps(fields), flush=True)

    say(first=timed_once(lambda: call(compiled)(data[0])))
    if mode == "eval":
        with torch.inference_mode():
            say(gap=(compiled(data[0]).outputs - eager(data[0]).outputs).abs().max().item())
    for model in (eager, compiled):
        per_batch(call(model), data[:2])
    samples: dict[str, list[float]] = {"eager": [], "compiled": []}
    for _ in range((5 if quick else 15) if mode == "eval" else (3 if quick else 9)):
        samples["compiled"].append(per_batch(call(compiled), data))
        samples["eager"].append(per_batch(call(eager), data))
    say(**{k: statistics.median(v) * 1e3 for k, v in samples.items()})
    if mode == "eval":  # av-digits' 500 test examples end with a batch of 20: a new shape
        partial = eager.preprocess([dataset[i] for i in range(BATCH - 12)])
        say(partial=timed_once(lambda: call(compiled)(partial)))


def run_child(call: str, env: dict[str, str], limit: float) -> dict:
    """Run ``bench_inference.<call>`` in a child process and merge the JSON lines it prints; stop it
    ``limit`` seconds after its last report (a recompile can take far longer than a first compile)."""
    code = f"import sys; sys.path.insert(0, {str(HERE)!r}); import bench_inference as b; b.{call}"
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             text=True, env={**os.environ, **env})
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in child.stdout] + [lines.put(None)],
                     daemon=True).start()
    report: dict = {}
    try:
        while True:
            try:
                line = lines.get(timeout=limit)
            except queue.Empty:
                report["stopped_after"] = limit
                break
            if line is None:
                break
            report.update(json.loads(line))
    finally:
        child.kill()
        child.wait()
    return report


def compile_report(key: str, mode: str, quick: bool, limit: float) -> dict:
    """:func:`compile_child` in a child process with a fresh inductor cache (a cold compile)."""
    cache = tempfile.mkdtemp(prefix="mmzoo-bench-inductor-")
    try:
        return run_child(f"compile_child({key!r}, {mode!r}, {quick!r})", {"TORCHINDUCTOR_CACHE_DIR": cache}, limit)
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def compile_result(what: str, label: str, report: dict) -> Result | None:
    if "compiled" not in report:
        print(f"compile {what} {label}: no steady-state figure ({report})", file=sys.stderr)
        return None
    eager, compiled, first = report["eager"], report["compiled"], report["first"]
    saved = (eager - compiled) / 1e3
    first_cost = first - compiled / 1e3
    pays = f"pays off after {first_cost / saved:,.0f} batches" if saved > 0 else "never pays off"
    note = f"first call {first:.0f} s (cold compile)"
    if what.startswith("eval"):
        partial = (f"{report['partial']:.0f} s" if "partial" in report
                   else f"over {report.get('stopped_after', 0):.0f} s, stopped")
        note += f", then the partial last batch {partial} (dynamic-shape recompile)"
    note += f"; {pays}"
    if "gap" in report:
        note += f"; max |logit diff| {report['gap']:.1e}"
    return Result("inference", f"compiled vs eager {what}, {label}", compiled, eager, "ms/batch", note=note)


def compiler_works() -> str:
    """'' when inductor builds and runs a kernel here, else why not."""
    try:
        fn = torch.compile(lambda x: (x * 2).sin())
        fn(torch.ones(4))
    except Exception as exc:  # noqa: BLE001 - report whatever stops the compiler
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return ""


def bench(args) -> list[Result]:
    torch.set_num_threads(1)
    results: list[Result] = []
    test = mmzoo.create_dataset("av-digits", split="test")
    problem = compiler_works()
    if problem:
        print(f"torch.compile does not work on this machine ({problem}); compile figures skipped",
              file=sys.stderr)
    limit = 240 if args.quick else 600
    train = mmzoo.create_dataset("av-digits", split="train")
    for key, (build, frozen) in models().items():
        model = build_or_skip(build, key)
        if model is None:
            continue
        eval_data = batches(model, test, 4 if args.quick else 8)
        eval_harness(model, args, key, eval_data, results)
        allocator_results(key, args, results)
        formats_and_precision(build, frozen, args, key, eval_data, batches(model, train, 3 if args.quick else 6),
                              results)
        if problem:
            continue
        for mode, what in (("eval", "eval forward"), ("train", "train fwd+bwd")):
            result = compile_result(what, key, compile_report(key, mode, args.quick, limit))
            if result is not None:
                results.append(result)
    return results


if __name__ == "__main__":
    main(bench, __doc__)
