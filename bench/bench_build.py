"""Building a pretrained model: ``create_model(dir)`` vs "random init, then load_state_dict".

create_model builds parts with parameters on the meta device (nothing initialised) and assigns
the tensors read from model.safetensors. Each measurement runs in a fresh process, timed after
imports; peak memory is the growth of the process's max RSS over the build, compared with the
size of the weights file (after every weight has been read once, as a first forward would).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from common import Result, interleaved, main, python

MODELS = {
    "builtin wide (cnn + byte-gru + mlp, 60 MB)": {
        "encoders": {"image": {"type": "cnn", "channels": [64, 128, 256], "output_dim": 1024},
                     "text": {"type": "byte-gru", "hidden_dim": 512, "output_dim": 1024},
                     "vec": {"type": "mlp", "in_dim": 512, "hidden_dims": [2048, 2048], "output_dim": 1024}},
        "fusion": {"type": "gated", "dim": 2048}, "head": {"type": "classification", "num_classes": 1000}},
    "efficientnet-lite0 + minilm (plugins)": {
        "encoders": {"image": {"type": "efficientnet-lite0"}, "text": {"type": "minilm"}},
        "fusion": {"type": "gated", "dim": 512}, "head": {"type": "classification", "num_classes": 10}},
}

CHILD = r"""
import json, sys, time
import torch, mmzoo
for library in ("timm", "transformers"):  # imports cost the same either way: keep them out of the timing
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

mode, directory = sys.argv[1], sys.argv[2]
registry = get_registry()
spec = json.load(open(directory + "/config.json"))["spec"]
open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM) to the current RSS
before = status("VmRSS:")
start = time.perf_counter()
if mode == "create_model":
    model = mmzoo.create_model(directory)
else:
    from mmzoo.builder import build_model
    from mmzoo.spec import parse_spec
    model = build_model(parse_spec(spec), registry=registry, for_weights=True)
    model.load_state_dict(load_file(directory + "/model.safetensors"))
seconds = time.perf_counter() - start
with torch.no_grad():  # page every weight in, as a first forward would
    for tensor in model.state_dict().values():
        tensor.sum()
print(json.dumps({"seconds": seconds, "peak_kb": status("VmHWM:") - before}))
"""


def _child(mode: str, directory: Path) -> dict:
    out = subprocess.run([python(), "-c", CHILD, mode, str(directory)], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench(args) -> list[Result]:
    import mmzoo

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, spec in MODELS.items():
            directory = Path(tmp) / label.split()[0]
            try:
                mmzoo.create_model(spec).save_pretrained(directory)
            except mmzoo.MmzooError as exc:  # a plugin that is not installed
                print(f"skipped {label}: {exc}", file=sys.stderr)
                continue
            size_kb = (directory / "model.safetensors").stat().st_size / 1024
            runs: dict[str, list[dict]] = {"create_model": [], "init_then_load": []}
            times = interleaved({mode: (lambda m=mode: runs[m].append(_child(m, directory)) or runs[m][-1]["seconds"])
                                 for mode in runs}, 3 if args.quick else 7)
            peak = sorted(r["peak_kb"] for r in runs["create_model"])[len(runs["create_model"]) // 2]
            base_peak = sorted(r["peak_kb"] for r in runs["init_then_load"])[len(runs["init_then_load"]) // 2]
            results.append(Result("build", f"create_model(dir) {label}", times["create_model"],
                                  times["init_then_load"], "s", "<= 0.5"))
            results.append(Result("build", f"peak memory over weights size, {label}", peak / 1024, size_kb / 1024,
                                  "MB", "<= 1.2", note=f"init-then-load peaks at {base_peak / 1024:.0f} MB"))
    return results


if __name__ == "__main__":
    main(bench, __doc__)
