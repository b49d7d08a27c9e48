"""The ``run.yaml`` schema: every key, its type, default and help text, and the checks across keys.

The help texts are the config's documentation: ``mmzoo train --print-config`` and the docs' run-config
reference render them. Each section's ``build`` turns validated values into a
:mod:`mmzoo.train.config_types` dataclass.
"""

from __future__ import annotations

from typing import Any

from mmzoo.errors import SpecError
from mmzoo.spec import SPEC_KEYS, Spec
from mmzoo.train.config_types import (
    CompileConfig,
    DataConfig,
    DDPConfig,
    DistributedConfig,
    FSDPConfig,
    ModelConfig,
    OptimConfig,
    SplitConfig,
    TrainConfig,
)
from mmzoo.train.schema import (
    REQUIRED,
    AnyOf,
    Bool,
    Choice,
    Field,
    Float,
    Int,
    ListOf,
    MapOf,
    Named,
    Optional,
    Section,
    Str,
    join_path,
)

OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULES = ("cosine", "linear", "constant")
PRECISIONS = ("fp32", "bf16", "fp16")
STRATEGIES = ("auto", "single", "ddp", "fsdp")
BOOL_OR_AUTO = AnyOf([Bool(), Choice(("auto",))])


def _build_model(values: dict[str, Any], path: str, problems: list[str]) -> Any:
    has_spec = any(values[k] is not None for k in SPEC_KEYS)
    if values["name"] is not None and has_spec:
        problems.append(
            f"{path}: give either 'name' (a registry name, hf-hub:org/repo or a directory) or an inline "
            "spec ('encoders', 'fusion', 'head'), not both"
        )
        return None
    if values["name"] is None and not has_spec:
        problems.append(
            f"{path}: required 'name' (a registry name, hf-hub:org/repo or a directory) or an inline spec "
            "with 'encoders', 'fusion' and 'head'"
        )
        return None
    if has_spec:
        if values["overrides"]:
            problems.append(f"{path}.overrides: only used with 'name'; edit the inline spec instead")
            return None
        spec = {k: values[k] for k in SPEC_KEYS if values[k] is not None}
        try:
            Spec.from_dict(spec, path or "model")  # the spec's structure, located, before any rank starts
        except SpecError as exc:
            problems.append(str(exc))
            return None
        return ModelConfig(spec=spec, pretrained=values["pretrained"])
    return ModelConfig(name=values["name"], pretrained=values["pretrained"], overrides=values["overrides"])


def _split_section(default_split: str, example: str) -> Section:
    return Section(
        {
            "dataset": Field(
                Str(), REQUIRED, "registered dataset name (mmzoo list --kind dataset)", example=example
            ),
            "split": Field(Str(), default_split, "split passed to the dataset factory"),
            "params": Field(MapOf(), dict, "keyword arguments for the dataset factory"),
            "max_examples": Field(Optional(Int(1)), None, "use only the first N examples"),
        },
        build=lambda v, p, probs: SplitConfig(**v),
    )


def _build_data(values: dict[str, Any], path: str, problems: list[str]) -> Any:
    for key, rate in values["modality_dropout"].items():
        if rate >= 1.0:
            problems.append(f"{join_path(path, 'modality_dropout')}.{key}: expected a probability in [0, 1) "
                            f"(1 would drop that input from every example), got {rate:g}")
    if values["modality_dropout"] and values["cache_features"] is True:
        problems.append(f"{join_path(path, 'cache_features')}: true cannot be combined with "
                        f"{join_path(path, 'modality_dropout')} (dropped inputs are decided per batch as the "
                        "model trains, cached features are read back as they were stored); use auto or false")
    return None if problems else DataConfig(**values)


def _build_optim(values: dict[str, Any], path: str, problems: list[str]) -> Any:
    name = values["name"]
    if name == "sgd":
        for key in ("betas", "eps"):
            if values[key] is not None:
                problems.append(f"{path}.{key}: only used by adam and adamw, not by sgd")
        values["momentum"] = 0.0 if values["momentum"] is None else values["momentum"]
        values["nesterov"] = bool(values["nesterov"])
        if values["nesterov"] and values["momentum"] <= 0:
            problems.append(f"{path}.nesterov: needs momentum > 0")
    else:
        for key in ("momentum", "nesterov"):
            if values[key] is not None:
                problems.append(f"{path}.{key}: only used by sgd, not by {name}")
        values["betas"] = tuple(values["betas"] or (0.9, 0.999))
        values["eps"] = 1e-8 if values["eps"] is None else values["eps"]
    if (values["epochs"] is None) == (values["steps"] is None):
        problems.append(f"{path}: set exactly one of 'epochs' or 'steps' (how long to train)")
    if problems:
        return None
    return OptimConfig(**values)


MODEL = Section(
    {
        "name": Field(
            Optional(Str()),
            None,
            "registry name, hf-hub:org/repo[@rev], a directory or a YAML spec file",
            example="digits-av-gated",
        ),
        "pretrained": Field(Bool(), False, "load the registry/hub weights before training"),
        "overrides": Field(MapOf(), dict, "overrides for parts, e.g. {head: {num_classes: 5}}"),
        "encoders": Field(Optional(MapOf()), None, "inline spec (instead of name): encoders by batch key"),
        "fusion": Field(Optional(MapOf()), None, "inline spec: the fusion, e.g. {type: gated, dim: 256}"),
        "head": Field(Optional(MapOf()), None, "inline spec: the head, e.g. {type: classification, num_classes: 10}"),
    },
    build=_build_model,
    doc="give 'name' (with optional 'overrides'), or an inline spec: 'encoders', 'fusion' and 'head'. "
    "'model: NAME' is short for 'model: {name: NAME}'",
)

DATA = Section(
    {
        "train": Field(
            _split_section("train", "av-digits"), REQUIRED, "training split; 'train: DATASET' is short for "
            "'train: {dataset: DATASET}'"
        ),
        "eval": Field(
            Optional(_split_section("test", "av-digits")),
            None,
            "evaluation split (leave it out for none); 'eval: DATASET' is short for 'eval: {dataset: DATASET}'",
        ),
        "batch_size": Field(Int(1), REQUIRED, "examples per device (per rank) and per micro-step", example=32),
        "eval_batch_size": Field(Optional(Int(1)), None, "examples per evaluation batch; null: batch_size"),
        "num_workers": Field(Int(0), 0, "DataLoader worker processes per rank (0: load in the training process)"),
        "prefetch_factor": Field(Optional(Int(1)), None, "batches prefetched per worker (null: torch's default)"),
        "persistent_workers": Field(Bool(), True, "keep workers alive across epochs"),
        "shuffle": Field(Bool(), True, "shuffle the training split every epoch"),
        "drop_last": Field(Bool(), False, "drop the last incomplete training batch of an epoch"),
        "modality_dropout": Field(
            MapOf(Float(0.0, 1.0)), dict, "encoder key -> probability in [0, 1) that a training example loses "
            "that input, e.g. {audio: 0.3, image: 0.1}; seeded by the run's seed, training only, an example "
            "keeps at least one input; the fusion must handle missing inputs"
        ),
        "cache_features": Field(
            BOOL_OR_AUTO, "auto", "compute frozen encoders' outputs once and read them back in later epochs "
            "and runs; auto: wherever an encoder may be cached (the run says why not), true: an error where not; "
            "never with modality_dropout"
        ),
    },
    build=_build_data,
)

OPTIM = Section(
    {
        "name": Field(Choice(OPTIMIZERS), "adamw", "optimizer"),
        "lr": Field(Float(0.0, exclusive_minimum=True), REQUIRED, "base learning rate", example=1e-3),
        "weight_decay": Field(
            Float(0.0), 0.0, "decoupled for adamw, L2 for adam/sgd; biases and norm weights get none "
            "unless decay_bias_and_norm"
        ),
        "betas": Field(Optional(ListOf(Float(0.0, 1.0), 2)), None, "adam/adamw betas (null: [0.9, 0.999])"),
        "eps": Field(Optional(Float(0.0, exclusive_minimum=True)), None, "adam/adamw epsilon (null: 1e-8)"),
        "momentum": Field(Optional(Float(0.0, 1.0)), None, "sgd momentum (null: 0)"),
        "nesterov": Field(Optional(Bool()), None, "sgd nesterov momentum (null: false)"),
        "decay_bias_and_norm": Field(Bool(), False, "also apply weight decay to biases and norm weights"),
        "lr_multipliers": Field(
            MapOf(Float(0.0)), dict, "part or submodule -> lr multiplier, e.g. {encoders.image: 0.1}; the "
            "most specific name wins"
        ),
        "freeze": Field(
            ListOf(Str()), list, "parts not trained, e.g. [encoders.image]: no gradients, and kept in eval "
            "mode (batch-norm statistics too)"
        ),
        "warmup_steps": Field(Int(0), 0, "linear warmup from 0 over this many optimizer steps"),
        "schedule": Field(Choice(SCHEDULES), "cosine", "learning-rate decay after warmup, down to min_lr_ratio * lr"),
        "min_lr_ratio": Field(Float(0.0, 1.0), 0.0, "final lr as a fraction of lr"),
        "epochs": Field(Optional(Int(1)), None, "train for this many epochs (set exactly one of epochs, steps)",
                        example=3),
        "steps": Field(Optional(Int(1)), None, "train for this many optimizer steps (or set epochs)"),
        "grad_accum": Field(
            Int(1), 1, "micro-batches per optimizer step (several ranks sync gradients on the last)"
        ),
        "clip_grad_norm": Field(Optional(Float(0.0, exclusive_minimum=True)), None, "max global grad norm"),
        "fused": Field(
            BOOL_OR_AUTO, "auto", "fused optimizer kernels; auto: wherever torch has them"
        ),
    },
    build=_build_optim,
)

DDP = Section(
    {
        "find_unused_parameters": Field(
            BOOL_OR_AUTO, "auto", "auto probes one batch for trainable parameters without grads"
        ),
        "gradient_as_bucket_view": Field(
            Bool(), True, "gradients are views into the all-reduce buckets (saves a copy)"
        ),
        "static_graph": Field(Bool(), False, "the set of used parameters never changes between steps"),
        "bucket_cap_mb": Field(Float(0.0, exclusive_minimum=True), 25.0, "gradient bucket size in MB"),
    },
    build=lambda v, p, probs: DDPConfig(**v),
    elsewhere={"timeout": "distributed.timeout (the collective timeout of every strategy)"},
)

FSDP = Section(
    {
        "shard": Field(
            AnyOf([Choice(("auto",)), ListOf(Str())]), "auto", "the units FSDP gathers and frees one at a "
            "time: auto (each encoder's repeated blocks, each encoder, the fusion; the head goes with the "
            "rest), or a list of parts and submodules where '*' stands for one name, e.g. "
            "[encoders.image.model.blocks.*, encoders.image, fusion]"
        ),
        "cpu_offload": Field(
            Bool(), False, "keep parameters, gradients and optimizer state in CPU memory between uses (CUDA "
            "only; the optimizer steps on the CPU): fits a larger model, runs slower"
        ),
        "reshard_after_forward": Field(
            Bool(), True, "free each unit's gathered parameters after forward and gather them again for "
            "backward (less memory, more communication)"
        ),
    },
    build=lambda v, p, probs: FSDPConfig(**v),
)

DISTRIBUTED = Section(
    {
        "timeout": Field(
            Float(0.0, exclusive_minimum=True), 300.0, "seconds a rank waits for the others in a collective "
            "(every strategy) before the job fails with a message, instead of hanging when a rank stopped or "
            "hung; raise it when one step or one evaluation can legitimately take longer"
        ),
    },
    build=lambda v, p, probs: DistributedConfig(**v),
)

COMPILE = AnyOf(
    [
        Bool(),
        Section(
            {
                "backend": Field(Str(), "inductor", "torch.compile backend"),
                "mode": Field(Optional(Str()), None, "torch.compile mode, e.g. max-autotune"),
                "dynamic": Field(Optional(Bool()), None, "dynamic shapes (null: torch decides)"),
                "fullgraph": Field(Bool(), False, "fail on a graph break instead of splitting the graph"),
                "eval": Field(Bool(), False, "also compile the evaluation forward (another compile)"),
            }
        ),
    ]
)


def _guess_best_mode(metric: str) -> str:
    lowered = metric.lower()
    return "min" if any(word in lowered for word in ("loss", "error", "mse", "mae", "perplexity")) else "max"


def _build_train(values: dict[str, Any], path: str, problems: list[str]) -> Any:
    compile_value = values["compile"]
    if compile_value is True:
        values["compile"] = CompileConfig()
    elif compile_value is False or compile_value is None:
        values["compile"] = None
    else:
        values["compile"] = CompileConfig(**compile_value)
    optim, ddp = values["optim"], values["ddp"]
    if ddp.static_graph and optim.grad_accum > 1:
        # DDP's static-graph reducer and no_sync() (used for the accumulated micro-batches) fail an
        # internal assert on the first step and, once past it, stop all-reducing (pytorch/pytorch#143580).
        problems.append(
            f"{join_path(path, 'ddp.static_graph')}: cannot be combined with optim.grad_accum > 1 (torch's "
            "static-graph DDP breaks under no_sync); set ddp.static_graph to false or optim.grad_accum to 1"
        )
        return None
    if values["best_mode"] is None:
        values["best_mode"] = _guess_best_mode(values["best_metric"])
    if values["final_model"] == "best" and values["data"].eval is None:
        problems.append(
            f"{join_path(path, 'final_model')}: 'best' picks the step with the best eval {values['best_metric']}, "
            "but there is no data.eval; add an eval split or set final_model: last"
        )
        return None
    return TrainConfig(**values)


SCHEMA = Section(
    {
        "model": Field(MODEL, REQUIRED, "the model to train"),
        "data": Field(DATA, REQUIRED, "datasets and loading"),
        "optim": Field(OPTIM, REQUIRED, "optimisation"),
        "output_dir": Field(
            Str(), REQUIRED, "the run directory (never overwritten unless resume is set)", example="runs/my-run"
        ),
        "precision": Field(
            Choice(PRECISIONS), "fp32", "fp32, bf16 (autocast) or fp16 (autocast + loss scaling)"
        ),
        "seed": Field(Int(0), 0, "seed for initialisation, shuffling and augmentation"),
        "eval_every": Field(
            Optional(Int(1)), None, "evaluate every N steps (null: each epoch end and the last step)"
        ),
        "save_every": Field(
            Optional(Int(1)), None, "checkpoint every N steps (null: each epoch end and the last step)"
        ),
        "log_every": Field(
            Int(1), 10, "log the training loss, lr and samples/s (averaged over these steps) every N steps, to "
            "metrics.jsonl and the console"
        ),
        "log_to": Field(
            ListOf(Named()), list, "experiment loggers fed every metrics.jsonl record (rank 0): 'tensorboard' "
            "(event files in the run dir; pip install 'mmzoo[tensorboard]') or a plugin's (mmzoo list --kind "
            "logger); {type: NAME, ...} passes parameters"
        ),
        "keep_last": Field(Int(1), 2, "checkpoints kept, plus the best one by best_metric"),
        "best_metric": Field(Str(), "loss", "eval metric that picks the best checkpoint"),
        "best_mode": Field(
            Optional(Choice(("min", "max"))), None, "whether best_metric is better low or high (null: guessed "
            "from its name)"
        ),
        "final_model": Field(
            Choice(("last", "best")), "last", "what RUN_DIR/model/ holds at the end: the last step's weights, or "
            "the best checkpoint's by best_metric (its step and eval metrics go to config.json and the card)"
        ),
        "resume": Field(
            Optional(Str()), None, "'auto' (latest checkpoint of output_dir, or a fresh start) or a checkpoint "
            "or run directory"
        ),
        "strategy": Field(
            Choice(STRATEGIES), "auto", "how ranks share the model: single (one process), ddp (a replica per "
            "rank, gradients all-reduced), fsdp (parameters, gradients and optimizer state sharded across "
            "ranks: for models whose replica does not fit one device); auto: single for one rank, ddp for "
            "several"
        ),
        "compile": Field(
            Optional(COMPILE), False, "torch.compile the training step: true, or a mapping of the options below"
        ),
        "channels_last": Field(
            AnyOf([Bool(), ListOf(Str())]), False, "NHWC memory format for conv weights: true, or parts like "
            "[encoders.image]"
        ),
        "ddp": Field(DDP, DDPConfig, "options of DistributedDataParallel (strategy ddp)"),
        "fsdp": Field(FSDP, FSDPConfig, "options of fully sharded data parallel (strategy fsdp)"),
        "activation_checkpointing": Field(
            ListOf(Str()), list, "parts or submodules whose activations are recomputed in backward instead of "
            "kept (less memory, about one more forward of them), e.g. [encoders.image]; a module list "
            "(encoders.image.model.blocks) means each of its blocks; any strategy"
        ),
        "distributed": Field(DISTRIBUTED, DistributedConfig, "how the ranks of a job wait for each other"),
        "device": Field(Choice(("auto", "cpu", "cuda")), "auto", "auto: CUDA when available"),
    },
    build=_build_train,
)
