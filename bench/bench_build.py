"""Building a pretrained model: ``create_model(dir)`` vs "random init, then load_state_dict".

create_model builds parts with parameters on the meta device (nothing initialised) and assigns
the tensors read from model.safetensors, each read straight into memory torch allocated (aligned as
torch aligns, so kernels take the path they took before saving; no second copy). Each measurement
runs in a fresh process, timed after imports; peak memory is the growth of the process's max RSS
over the build, compared with the size of the weights file (after every weight has been read once,
as a first forward would).

"After imports" means every third-party module the build needs, not only timm and transformers:
transformers imports its model code lazily (on first use: ~1 s and ~50 MB for BERT, scipy
included), so a probe process first does the baseline build and lists the modules it imported;
each measuring process imports those (mmzoo's own and its plugins' modules excepted) before the
clock starts. Both ways pay that cost alike; its size is printed in the note.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from functools import partial
from pathlib import Path

from common import Result, build_or_skip, interleaved, main, python

MODELS = {
    "builtin wide (cnn + byte-gru + mlp, 148 MB)": {
        "encoders": {"image": {"type": "cnn", "channels": [64, 128, 256], "output_dim": 1024},
                     "text": {"type": "byte-gru", "hidden_dim": 512, "output_dim": 1024},
                     "vec": {"type": "mlp", "in_dim": 512, "hidden_dims": [2048, 2048], "output_dim": 1024}},
        "fusion": {"type": "gated", "dim": 2048}, "head": {"type": "classification", "num_classes": 1000}},
    "efficientnet-lite0 + minilm (plugins)": {
        "encoders": {"image": {"type": "efficientnet-lite0"}, "text": {"type": "minilm"}},
        "fusion": {"type": "gated", "dim": 512}, "head": {"type": "classification", "num_classes": 10}},
}

CHILD = r"""
import importlib, json, sys, time
import torch, mmzoo
for library in ("timm", "transformers"):
    try:
        __import__(library)
    except ImportError:
        pass
from mmzoo.plugins import get_registry
from safetensors.torch import load_file

def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1])

mode, directory, imports = sys.argv[1], sys.argv[2], sys.argv[3]
known = set(sys.modules)
rss, start = status("VmRSS:"), time.perf_counter()
for module in json.load(open(imports)) if mode != "probe" else ():  # imports cost the same either way
    try:
        importlib.import_module(module)
    except Exception:  # a private alias some package registers under another name
        pass
import_seconds, import_kb = time.perf_counter() - start, status("VmRSS:") - rss
registry = get_registry()
spec = json.load(open(directory + "/config.json"))["spec"]
open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM) to the current RSS
before = status("VmRSS:")
start = time.perf_counter()
if mode == "create_model":
    model = mmzoo.create_model(directory)
else:  # init_then_load, or probe: the same, to find what it imports
    from mmzoo.builder import build_model
    model = build_model(spec, registry=registry, for_weights=True)
    model.load_state_dict(load_file(directory + "/model.safetensors"))
seconds = time.perf_counter() - start
if mode == "probe":
    third_party = [m for m in sys.modules if m not in known and not m.split(".")[0].startswith("mmzoo")]
    json.dump(third_party, open(imports, "w"))
with torch.no_grad():  # page every weight in, as a first forward would
    for tensor in model.state_dict().values():
        tensor.sum()
print(json.dumps({"seconds": seconds, "peak_kb": status("VmHWM:") - before, "import_seconds": import_seconds,
                  "import_kb": import_kb}))
"""


def _child(mode: str, directory: Path, imports: Path) -> dict:
    out = subprocess.run([python(), "-c", CHILD, mode, str(directory), str(imports)], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _measure(directory: Path, imports: Path, repeats: int) -> tuple[dict[str, list[dict]], dict[str, float]]:
    """Both ways, alternating, in fresh processes: every run's figures and the median seconds."""
    runs: dict[str, list[dict]] = {"create_model": [], "init_then_load": []}

    def measure(mode: str) -> float:
        runs[mode].append(_child(mode, directory, imports))
        return runs[mode][-1]["seconds"]

    return runs, interleaved({mode: (lambda m=mode: measure(m)) for mode in runs}, repeats)


def _median(runs: list[dict], key: str) -> float:
    return sorted(r[key] for r in runs)[len(runs) // 2]


def bench(args) -> list[Result]:
    import mmzoo

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, spec in MODELS.items():
            directory = Path(tmp) / label.split()[0]
            model = build_or_skip(partial(mmzoo.create_model, spec), label)
            if model is None:
                continue
            model.save_pretrained(directory)
            size_kb = (directory / "model.safetensors").stat().st_size / 1024
            imports = Path(tmp) / f"{directory.name}-imports.json"
            _child("probe", directory, imports)
            runs, times = _measure(directory, imports, 3 if args.quick else 7)
            peak, base_peak = _median(runs["create_model"], "peak_kb"), _median(runs["init_then_load"], "peak_kb")
            every = runs["create_model"] + runs["init_then_load"]
            warmed = (f"imported before the clock, besides timm and transformers: "
                      f"{len(json.loads(imports.read_text()))} modules the build needs, "
                      f"{_median(every, 'import_seconds'):.2f} s, {_median(every, 'import_kb') / 1024:.0f} MB")
            results.append(Result("build", f"create_model(dir) {label}", times["create_model"],
                                  times["init_then_load"], "s", "<= 0.5", note=warmed))
            results.append(Result("build", f"peak memory over weights size, {label}", peak / 1024, size_kb / 1024,
                                  "MB", "<= 1.2", note=f"init-then-load peaks at {base_peak / 1024:.0f} MB"))
    return results


if __name__ == "__main__":
    main(bench, __doc__)
