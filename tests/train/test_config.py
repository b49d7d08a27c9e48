"""The run config: defaults, --set overrides, and one located message per mistake."""

from __future__ import annotations

import pytest

from mmzoo.errors import ConfigError
from mmzoo.train.config import load_config, validate_config
from mmzoo.train.rawconfig import apply_overrides, parse_override

BASE = {
    "model": "digits-av-gated",
    "data": {"train": "toy-blobs", "batch_size": 8},
    "optim": {"lr": 0.001, "steps": 10},
    "output_dir": "runs/x",
}


def with_(**changes):
    config = {k: (dict(v) if isinstance(v, dict) else v) for k, v in BASE.items()}
    for key, value in changes.items():
        section, _, name = key.partition("__")
        if name:
            config[section] = {**config[section], name: value}
        else:
            config[section] = value
    return config


def error_of(raw) -> str:
    with pytest.raises(ConfigError) as info:
        validate_config(raw, "run.yaml")
    return str(info.value)


def test_defaults_are_filled_and_shorthands_expanded():
    config = validate_config(BASE)
    assert config.model.name == "digits-av-gated" and config.model.spec is None
    assert config.data.train.dataset == "toy-blobs" and config.data.train.split == "train"
    assert config.data.eval is None and config.data.num_workers == 0
    assert (
        config.optim.name == "adamw" and config.optim.betas == (0.9, 0.999) and config.optim.momentum is None
    )
    assert config.optim.schedule == "cosine" and config.optim.grad_accum == 1
    assert config.precision == "fp32" and config.resume is None and config.compile is None
    assert config.best_metric == "loss" and config.best_mode == "min"


def test_resolved_config_round_trips():
    config = validate_config(
        with_(compile={"backend": "eager"}, optim__freeze=["fusion"], best_metric="accuracy")
    )
    assert config.best_mode == "max"  # guessed from the metric's name
    again = validate_config(config.to_dict())
    assert again == config


def test_inline_spec_model():
    spec = {
        "encoders": {"v": {"type": "mlp", "in_dim": 3}},
        "fusion": {"type": "concat"},
        "head": {"type": "regression", "num_outputs": 1},
    }
    config = validate_config(with_(model=spec))
    assert config.model.spec == spec and config.model.name is None
    assert validate_config(config.to_dict()).model.spec == spec


def test_number_strings_are_numbers():
    # YAML 1.1 reads 1e-3 as a string; it is still a learning rate
    assert validate_config(with_(optim__lr="1e-3")).optim.lr == pytest.approx(1e-3)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (with_(optim__lr="x"), "run.yaml: optim.lr: expected float > 0, got 'x'"),
        (with_(optim__lr=-1), "optim.lr: expected float > 0, got -1"),
        (with_(optim__stpes=3), "optim.stpes: unknown key. Did you mean 'steps'?"),
        (with_(precison="bf16"), "precison: unknown key. Did you mean 'precision'?"),
        (with_(ddp={"timeout": 60}), "ddp.timeout: unknown key. It is set as distributed.timeout"),
        (
            with_(precision="bf61"),
            "precision: expected one of 'fp32', 'bf16', 'fp16', got 'bf61'. Did you mean 'bf16'?",
        ),
        (with_(optim__name="adamw2"), "optim.name: expected one of 'adamw', 'adam', 'sgd', got 'adamw2'"),
        (with_(data__batch_size=0), "data.batch_size: expected int >= 1, got 0"),
        (with_(data__batch_size=True), "data.batch_size: expected int >= 1, got True"),
        (
            with_(data__train={"dataset": "x", "param": {}}),
            "data.train.param: unknown key. Did you mean 'params'?",
        ),
        (with_(data__train={"split": "train"}), "data.train.dataset: required"),
        (
            with_(optim__freeze="encoders.image"),
            "optim.freeze: expected a list of strings, got 'encoders.image'",
        ),
        (
            with_(optim__lr_multipliers={"head": "fast"}),
            "optim.lr_multipliers.head: expected float >= 0, got 'fast'",
        ),
        (with_(optim__betas=[0.9]), "optim.betas: expected a list of 2 floats in [0, 1], got a list"),
        (with_(optim__momentum=0.9), "optim.momentum: only used by sgd, not by adamw"),
        (with_(optim__name="sgd", optim__betas=[0.9, 0.99]), "optim.betas: only used by adam and adamw"),
        (with_(optim__epochs=2), "optim: set exactly one of 'epochs' or 'steps'"),
        (with_(optim={"lr": 0.1}), "optim: set exactly one of 'epochs' or 'steps'"),
        (with_(model={"name": "x", "encoders": {}}), "model: give either 'name'"),
        (with_(model={"pretrained": True}), "model: required 'name'"),
        (with_(compile="yes"), "compile: expected true or false or a mapping, got 'yes'"),
        (with_(resume=3), "resume: expected a non-empty string, got 3"),
        (
            with_(strategy="dpp"),
            "strategy: expected one of 'auto', 'single', 'ddp', 'fsdp', got 'dpp'. Did you mean 'ddp'?",
        ),
        ({k: v for k, v in BASE.items() if k != "output_dir"}, "output_dir: required, expected a string"),
        (["model"], "run.yaml: expected a mapping of keys"),
    ],
)
def test_each_mistake_has_one_located_message(raw, message):
    assert message in error_of(raw)


def test_several_mistakes_are_listed_together():
    text = error_of(with_(optim__lr="x", data__batchsize=4, seed=-1))
    assert text.startswith("run.yaml: 3 problems:\n")
    assert "  data.batchsize: unknown key. Did you mean 'batch_size'?" in text
    assert "  optim.lr: expected float > 0, got 'x'" in text
    assert "  seed: expected int >= 0, got -1" in text


def test_set_overrides_are_yaml_values():
    assert parse_override("optim.lr=3e-4") == (["optim", "lr"], "3e-4")
    assert parse_override("data.eval={dataset: d, split: val}") == (
        ["data", "eval"],
        {"dataset": "d", "split": "val"},
    )
    assert parse_override("optim.freeze=[fusion, head]")[1] == ["fusion", "head"]
    assert parse_override("resume=null") == (["resume"], None)
    raw = apply_overrides(BASE, ["optim.steps=20", "data.eval.dataset=toy-blobs", "compile=true"])
    config = validate_config(raw)
    assert config.optim.steps == 20 and config.data.eval.dataset == "toy-blobs" and config.compile is not None
    assert BASE["optim"] == {"lr": 0.001, "steps": 10}  # the input is not modified


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.lr", "--set 'optim.lr': expected KEY=VALUE with a dotted key, like optim.lr=3e-4"),
        ("=3", "--set '=3': expected KEY=VALUE"),
        ("optim..lr=3", "--set 'optim..lr=3': expected KEY=VALUE"),
        ("optim.lr=[1, 2", "--set 'optim.lr=[1, 2': the value is not valid YAML"),
        ("output_dir.x=1", "--set 'output_dir.x=1': 'output_dir' is str 'runs/x', not a mapping"),
    ],
)
def test_bad_overrides(override, message):
    with pytest.raises(ConfigError) as info:
        apply_overrides(BASE, [override])
    assert message in str(info.value)


def test_load_config_from_file_with_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(
        "model: m\ndata:\n  train: toy-blobs\n  batch_size: 4\noptim: {lr: 1e-3, epochs: 1}\n"
        "output_dir: out\n",
        encoding="utf-8",
    )
    config = load_config(path, ["model.overrides.head.num_classes=5", "optim.name=sgd"])
    assert config.model.overrides == {"head": {"num_classes": 5}} and config.optim.name == "sgd"
    assert config.source == str(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model: [1, 2\n", "run.yaml:2:1: invalid YAML"),
        ("", "run.yaml: the config file is empty"),
        ("- a\n- b\n", "run.yaml: expected a mapping of keys (model, data, optim, ...), got list"),
        (
            "optim: {lr: x, steps: 1}\nmodel: m\ndata: {train: d, batch_size: 1}\noutput_dir: o\n",
            "run.yaml: optim.lr: expected float > 0, got 'x'",
        ),
    ],
)
def test_bad_files(tmp_path, text, message):
    path = tmp_path / "run.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(str(tmp_path))
    assert message in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_strategy_auto_is_single_for_one_rank_and_ddp_for_several():
    auto = validate_config(BASE)
    assert auto.strategy == "auto"
    assert (auto.strategy_for(1), auto.strategy_for(4)) == ("single", "ddp")
    assert validate_config(with_(strategy="ddp")).strategy_for(1) == "ddp"
    single = validate_config(with_(strategy="single"))
    assert single.strategy_for(1) == "single"
    with pytest.raises(ConfigError, match="strategy: 'single' trains in one process, but this job has 2 ranks"):
        single.strategy_for(2)


def test_every_strategy_name_has_an_implementation():
    from mmzoo.train.config import STRATEGIES
    from mmzoo.train.strategy import STRATEGIES as IMPLEMENTED
    from mmzoo.train.strategy import implementation

    assert set(STRATEGIES) == {"auto", *IMPLEMENTED}
    assert all(implementation(name).name == name for name in IMPLEMENTED)


def _fields(section, prefix=""):
    """(dotted key, Field) of every key of a schema section, nested sections included."""
    from mmzoo.train.schema import AnyOf, Optional, Section

    for key, field in section.fields.items():
        path = f"{prefix}{key}"
        yield path, field
        inner = field.validator.inner if isinstance(field.validator, Optional) else field.validator
        options = inner.alternatives if isinstance(inner, AnyOf) else [inner]
        for option in options:
            if isinstance(option, Section):
                yield from _fields(option, path + ".")


def test_the_reference_config_is_generated_from_the_schema_and_validates():
    """`mmzoo train --print-config` renders every key of the schema with its help text, and what it prints
    is a valid config (so it can be copied and edited)."""
    import re

    import yaml

    from mmzoo.train.config import SCHEMA
    from mmzoo.train.reference import render_reference

    text = render_reference()
    config = validate_config(yaml.safe_load(text), "reference")
    assert config.model.name == "digits-av-gated" and config.optim.epochs == 3 and config.compile is None
    assert config.data.eval is not None and config.data.eval.split == "test"
    comments = " ".join(" ".join(re.findall(r"#\s*(.*)", text)).split())
    keys = {match.group(1) for match in re.finditer(r"^\s*(?:# )?([a-z_]+):", text, re.MULTILINE)}
    fields = list(_fields(SCHEMA))
    assert len(fields) > 50
    for path, field in fields:
        assert path.rsplit(".", 1)[-1] in keys, path
        assert field.help, f"{path} has no help text"
        assert " ".join(field.help.split()) in comments, path
    for allowed in ("one of 'adamw', 'adam', 'sgd'", "one of 'auto', 'single', 'ddp'", "float > 0"):
        assert allowed in comments


def test_print_config_on_the_command_line_and_the_module_docstring_points_to_it(capsys):
    import mmzoo.train
    from mmzoo.cli import main
    from mmzoo.train.reference import render_reference

    assert main(["train", "--print-config"]) == 0
    assert capsys.readouterr().out == render_reference()
    assert "--print-config" in mmzoo.train.__doc__
    assert "lr_multipliers" not in mmzoo.train.__doc__  # the reference is not repeated by hand
    assert main(["train"]) == 2
    assert "config: required" in capsys.readouterr().err
