"""The composed model: encoders -> fusion -> head."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from mmzoo.data.origin import locate
from mmzoo.errors import BuildError, MmzooError
from mmzoo.missing import (
    PRESENT,
    absent_feature,
    batch_size_of,
    check_handles_missing,
    complete,
    full_masks,
    masks_from,
    presence,
    scatter,
)
from mmzoo.outputs import EncoderOutput, ModelOutput
from mmzoo.saved import CONFIG_NAME, FORMAT, RESERVED_KEYS, WEIGHTS_NAME, check_labels, head_size
from mmzoo.spec import Spec


class Collator:
    """Turns a list of example dicts into a batch: each encoder's ``preprocess`` on its key's values.

    An example lacks an input when its key is absent or ``None``: each ``preprocess`` then gets only
    the values of the examples that have it (a key no example has is left out of the batch), and the
    batch gets ``"present"``, ``{key: BoolTensor[B]}`` for every key (see :mod:`mmzoo.missing`).
    Picklable, so it can be a DataLoader ``collate_fn`` and run in worker processes.
    """

    def __init__(self, preprocessors: Mapping[str, Callable], collate_targets: Callable | None = None):
        self.preprocessors = dict(preprocessors)
        self.collate_targets = collate_targets

    def __call__(self, examples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        if isinstance(examples, Mapping) or not isinstance(examples, Sequence) or not examples \
                or not all(isinstance(example, Mapping) for example in examples):
            raise MmzooError("preprocess expects a non-empty list of example dicts, one per example "
                             f"(keys {', '.join(self.preprocessors)} and optionally 'target')")
        flags = presence(examples, list(self.preprocessors))
        batch: dict[str, Any] = {}
        for key, preprocess in self.preprocessors.items():
            having = [example for example, has in zip(examples, flags[key]) if has]
            if having:
                batch[key] = locate(preprocess, [example[key] for example in having], having, key)
        if not all(all(has) for has in flags.values()):
            batch[PRESENT] = masks_from(flags)
        has_target = ["target" in example for example in examples]
        if any(has_target):
            if not all(has_target):
                raise MmzooError("some examples have a 'target' and some do not; give all or none")
            targets = [example["target"] for example in examples]
            collate = self.collate_targets or torch.as_tensor
            batch["target"] = locate(collate, targets, examples, "target")  # its error names the row
        return batch


class MultimodalModel(nn.Module):
    """Encoders (one per batch key) -> one fusion -> one head.

    ``model(batch)`` returns a :class:`~mmzoo.ModelOutput`; the loss is computed when the batch has
    a ``"target"`` or the head needs none (``requires_target = False``). A batch value that is already
    an :class:`~mmzoo.EncoderOutput` is taken as that encoder's output (its encoder is not run).

    Besides its parts, a model carries what ``save_pretrained`` writes to ``config.json``: its spec
    (``model.spec``, a dict; ``model.typed_spec``, a :class:`~mmzoo.spec.Spec`), ``name``,
    ``requires`` (the distributions and versions it was built with), ``labels`` (class names by
    output index, or None) and ``provenance`` (what the run that made its weights recorded:
    ``metrics``, ``datasets``, ``training``; kept from the directory it was loaded from).
    """

    def __init__(self, encoders: Mapping[str, nn.Module], fusion: nn.Module, head: nn.Module, *,
                 spec: Spec | Mapping, name: str | None = None, requires: Mapping[str, str] | None = None,
                 labels: Sequence[str] | None = None):
        super().__init__()
        self.encoders = nn.ModuleDict(dict(encoders))
        self.fusion = fusion
        self.head = head
        self._spec = Spec.from_dict(spec)
        self.name = name
        self.requires = dict(requires or {})
        self.labels = labels
        self.provenance: dict[str, Any] = {}
        self.load_report = None
        self._loss_without_target = getattr(head, "requires_target", True) is False

    @property
    def typed_spec(self) -> Spec:
        """The model's composition as a :class:`~mmzoo.spec.Spec` (frozen)."""
        return self._spec

    @property
    def spec(self) -> dict[str, Any]:
        """The model's composition in the dict schema of ``config.json`` (a fresh copy)."""
        return self._spec.to_dict()

    @property
    def labels(self) -> tuple[str, ...] | None:
        """Class names in output index order (like transformers' ``id2label``), or None.

        Setting it checks the names (distinct, one line each) and, for a head that says how many
        outputs it has (``num_classes``, ``num_labels``, ``num_outputs``), their number.
        """
        return self._labels

    @labels.setter
    def labels(self, labels: Sequence[str] | None) -> None:
        self._labels = None if labels is None else check_labels(labels, "model.labels", size=head_size(self.head))

    @property
    def modalities(self) -> dict[str, str | None]:
        """Batch key -> the modality its encoder reads (when the encoder declares it)."""
        return {key: getattr(enc, "modality", None) for key, enc in self.encoders.items()}

    def forward(self, batch: Mapping[str, Any]) -> ModelOutput:
        features, present = self.encode(batch)
        fused, outputs = self.decode(features, present)
        loss = None
        target = batch.get("target")
        if target is not None or self._loss_without_target:
            loss = self.head.loss(outputs, target)
        return ModelOutput(outputs=outputs, loss=loss, fused=fused, features=features)

    def encode(self, batch: Mapping[str, Any]) -> tuple[dict[str, EncoderOutput], dict[str, Tensor] | None]:
        """Each encoder on its key's inputs: ``(features by key, presence masks or None)``.

        With ``batch["present"]`` (some example lacks an input), each encoder runs on the examples that
        have its input and its features are placed in the rows of those examples (zeros elsewhere,
        tokens masked); the masks are returned for every key. A complete batch gives ``None``.
        """
        present = batch.get(PRESENT)
        size = batch_size_of(present) if present else 0
        features = {}
        for key, encoder in self.encoders.items():
            mask = present.get(key) if present else None
            if mask is not None and not bool(mask.any()):
                if key in batch:
                    raise MmzooError(f"batch['{key}'] holds inputs but batch['{PRESENT}']['{key}'] marks no example "
                                     "as having it; build batches with model.preprocess(examples)")
                feature = absent_feature(size, encoder.output_dim, self._reference_tensor())
                if self.training and torch.is_grad_enabled():
                    # The encoder did not run; its parameters still join the graph (with zero gradients) so
                    # that DistributedDataParallel finds every parameter used in every step on every rank.
                    unused = [p.sum() for p in encoder.parameters() if p.requires_grad]
                    if unused:
                        feature.pooled = feature.pooled + 0.0 * torch.stack(unused).sum().to(feature.pooled.dtype)
                features[key] = feature
                continue
            if key not in batch:
                raise MmzooError(f"the batch has no '{key}' (keys: {', '.join(map(str, batch))}); this model "
                                 f"reads {', '.join(self.encoders)} — build batches with model.preprocess(examples)")
            value = batch[key]
            # precomputed features (the feature cache's batches) stand in for the encoder's output
            out = value if isinstance(value, EncoderOutput) else encoder(value)
            out = out if isinstance(out, EncoderOutput) else EncoderOutput(out)
            self._check_width(key, encoder, out)
            if mask is not None:
                rows = int(mask.sum())
                if out.pooled.shape[0] != rows:
                    raise MmzooError(f"encoder '{key}' gave {out.pooled.shape[0]} rows but batch['{PRESENT}']['{key}'] "
                                     f"marks {rows} examples as having it; build batches with model.preprocess")
                if rows < size:
                    out = scatter(out, mask.to(out.pooled.device), size)
            features[key] = out
        if present is None:
            return features, None
        device = next(iter(features.values())).pooled.device
        return features, full_masks(present, list(self.encoders), size, device)

    def decode(self, features: Mapping[str, EncoderOutput],
               present: Mapping[str, Tensor] | None = None) -> tuple[Any, Any]:
        """The fusion, then the head, on encoded features: ``(fused, outputs)``.

        ``present`` (from :meth:`encode`) says which examples have which input; a fusion (and a head
        taking one embedding per modality) gets it only when it declares ``handles_missing``, and an
        incomplete batch is an error for one that does not.
        """
        incomplete = present is not None and not complete(present)
        if incomplete:
            check_handles_missing(self.fusion, "fusion", present)
            fused = self.fusion(features, present=present)
        else:
            fused = self.fusion(features)
        if incomplete and getattr(self.fusion, "output_kind", "tensor") == "dict":
            check_handles_missing(self.head, "head", present)
            return fused, self.head(fused, present=present)
        return fused, self.head(fused)

    def _reference_tensor(self) -> Tensor:
        """A tensor on the model's device and in its floating dtype (for features of absent inputs)."""
        for param in self.parameters():
            if param.is_floating_point():
                return param
        return torch.zeros(())

    def _check_width(self, key: str, encoder: nn.Module, out: EncoderOutput) -> None:
        """The fusion and head were sized from the encoder's ``output_dim``: features of another width
        are the encoder's fault, named here before they reach the fusion (about a microsecond a forward)."""
        declared = encoder.output_dim
        tokens = out.tokens
        if out.pooled.shape[-1] == declared and (tokens is None or tokens.shape[-1] == declared):
            return
        part = self._spec.part(f"encoders.{key}")
        what, value = ("pooled", out.pooled) if out.pooled.shape[-1] != declared else ("tokens", tokens)
        raise BuildError(
            f"encoders.{key} ({part.name}): output_dim says {declared} but forward returned {what} features of "
            f"width {value.shape[-1]} (shape {list(value.shape)}); the fusion and head were sized from output_dim, "
            f"so the encoder must report its real width (check it with mmzoo.testing.check_encoder)")

    @property
    def collator(self) -> Collator:
        """A picklable ``collate_fn``: list of example dicts -> batch."""
        return Collator({key: enc.preprocess for key, enc in self.encoders.items()},
                        getattr(self.head, "collate_targets", None))

    def preprocess(self, examples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Build a batch from raw examples (a list of dicts holding each encoder key's raw value)."""
        return self.collator(examples)

    def explain(self, examples: Sequence[Mapping[str, Any]], **options: Any) -> list:
        """Why the model gives each raw example its output: exact Shapley values over its inputs, and
        integrated gradients within image and text inputs (see :func:`mmzoo.explain.explain` for the
        options ``target``, ``within``, ``steps`` and ``out_dir``). Returns one
        :class:`~mmzoo.explain.Explanation` per example."""
        from mmzoo.explain import explain

        return explain(self, examples, **options)

    # ----- using a trained model (the work is in mmzoo.inference) -----------------------------------
    def predict(self, examples: Any, *, top_k: int | None = 1, batch_size: int = 32,
                threshold: float | None = None):
        """Predictions for raw examples, one :mod:`~mmzoo.inference.results` object per example.

        ``examples``: a list of dicts holding a raw value per encoder key (a file path for image and
        audio keys, text, arrays...; other keys and ``"target"`` are ignored), or one such dict (one
        result back); for a model with one encoder, raw values alone. A classifier gives the ``top_k``
        classes by softmax probability (``None``: all), a multi-label head the labels whose sigmoid
        reaches ``threshold`` (default: the head's), a regression head its values by name, a
        contrastive model each key's normalised embedding. Names are ``model.labels``; a model without
        labels names classes by index (``named=False``). Runs in batches of ``batch_size`` in eval mode
        under ``torch.inference_mode`` on the model's device, and restores the model's mode.
        """
        from mmzoo.inference.predict import predict

        return predict(self, examples, top_k=top_k, batch_size=batch_size, threshold=threshold)

    def embed(self, key: str, values: Any, *, normalize: bool = True, batch_size: int = 32) -> torch.Tensor:
        """Embeddings ``[N, D]`` of raw ``values`` of one batch key (one value alone gives ``[1, D]``), on the
        model's device: the encoder's pooled features, projected by the fusion for a contrastive model
        (so ``model.embed("image", imgs) @ model.embed("text", texts).T`` are similarities), L2-normalised
        unless ``normalize=False``."""
        from mmzoo.inference.embed import embed

        return embed(self, key, values, normalize=normalize, batch_size=batch_size)

    def zero_shot(self, values: Any, labels: Sequence[str], *, template: str = "a photo of {}",
                  key: str | None = None, text_key: str | None = None, top_k: int | None = None,
                  batch_size: int = 32):
        """Classify ``values`` (of batch key ``key``: the model's non-text key by default) into ``labels``
        by a contrastive model: each label is written into ``template``, embedded by the text encoder
        (``text_key``), and scored against each value; returns a
        :class:`~mmzoo.inference.results.ClassPrediction` per value (labels best first, softmax scores).
        A model that is not contrastive is an error."""
        from mmzoo.inference.embed import zero_shot

        return zero_shot(self, values, labels, template=template, key=key, text_key=text_key, top_k=top_k,
                         batch_size=batch_size)

    def part_modules(self) -> dict[str, nn.Module]:
        """Each part by its path in the spec (``encoders.<key>``, ``fusion``, ``head``), in build order."""
        return {path: self.get_submodule(path) for path in self._spec.paths()}

    def part_parameters(self) -> dict[str, int]:
        """Number of parameters of each part."""
        return {name: sum(p.numel() for p in module.parameters()) for name, module in self.part_modules().items()}

    def config(self) -> dict[str, Any]:
        """What ``config.json`` holds (see :mod:`mmzoo.saved`): the spec, the distributions (with
        versions) it needs, its labels when set, and its provenance."""
        import mmzoo

        config = {"format": FORMAT, "mmzoo_version": mmzoo.__version__, "name": self.name, "spec": self.spec,
                  "requires": dict(self.requires)}
        if self.labels is not None:
            config["labels"] = list(self.labels)
        config.update({k: copy.deepcopy(v) for k, v in self.provenance.items() if k not in RESERVED_KEYS})
        return config

    def save_pretrained(self, directory: str | Path, *, extra: Mapping[str, Any] | None = None) -> Path:
        """Write ``config.json`` and ``model.safetensors`` to ``directory`` (created if needed).

        ``extra`` adds (or replaces provenance) keys of ``config.json``, such as the trainer's
        ``metrics``, ``datasets`` and ``training``; the keys mmzoo writes itself are reserved.
        """
        from mmzoo.weights import save_weights

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = self.config()
        for key, value in (extra or {}).items():
            if key in RESERVED_KEYS:
                raise MmzooError(f"save_pretrained(extra=...): '{key}' is reserved in config.json")
            config[key] = copy.deepcopy(value)
        save_weights(self, directory / WEIGHTS_NAME)
        tmp = directory / (CONFIG_NAME + ".tmp")
        tmp.write_text(json.dumps(config, indent=2, sort_keys=False) + "\n", encoding="utf-8")
        tmp.replace(directory / CONFIG_NAME)
        return directory

    def push_to_hub(self, repo_id: str, **kwargs: Any):
        """Publish this model to the Hub (see :func:`mmzoo.hub.push.push_to_hub`)."""
        from mmzoo.hub.push import push_to_hub

        return push_to_hub(self, repo_id, **kwargs)

    def extra_repr(self) -> str:
        return f"name={self.name!r}" if self.name else ""
