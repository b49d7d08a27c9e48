"""Source code of small third-party plugins, written only against DESIGN.md, for the tests to install."""

# A complete third-party plugin: a lazily imported encoder and fusion, and models from YAML.
FOO_PLUGIN = '''
import pathlib

import mmzoo


@mmzoo.hookimpl
def mmzoo_register_components(registry):
    registry.add_encoder("hashed-words", "fixture_foo_parts:HashedWords", modality="text",
                         description="bag of hashed words -> linear")
    registry.add_fusion("max", "fixture_foo_parts:MaxFusion", description="element-wise max of projections")


@mmzoo.hookimpl
def mmzoo_register_models(registry):
    registry.add_models_from_yaml(pathlib.Path(__file__).with_name("fixture_foo_models.yaml"))
'''

FOO_PARTS = '''
import zlib

import torch
from torch import nn


class HashedWords(nn.Module):
    """Duck-typed encoder: no mmzoo base class."""

    def __init__(self, buckets: int = 64, output_dim: int = 16):
        super().__init__()
        self.buckets = buckets
        self.output_dim = output_dim
        self.proj = nn.Linear(buckets, output_dim)

    def preprocess(self, examples):
        out = torch.zeros(len(examples), self.buckets)
        for i, text in enumerate(examples):
            for word in str(text).lower().split():
                out[i, zlib.crc32(word.encode()) % self.buckets] += 1.0
        return out

    def forward(self, inputs):
        return self.proj(inputs)


class MaxFusion(nn.Module):
    def __init__(self, input_dims, dim: int = 8):
        super().__init__()
        self.output_dim = dim
        self.proj = nn.ModuleDict({k: nn.Linear(d, dim) for k, d in input_dims.items()})

    def forward(self, features):
        stacked = torch.stack([self.proj[k](f.pooled) for k, f in features.items()])
        return stacked.max(dim=0).values
'''

FOO_MODELS = '''
models:
  foo-words-max:
    description: hashed words and a vector, max-fused
    encoders:
      text: {type: hashed-words, buckets: 32, output_dim: 12}
      vec: {type: fixture-vector, in_dim: 4, output_dim: 12}
    fusion: {type: max, dim: 6}
    head: {type: fixture-classify, num_classes: 3}
'''

# A minimal "builtin-like" set of parts so core tests do not depend on mmzoo.parts.
BASE_PLUGIN = '''
import mmzoo


@mmzoo.hookimpl
def mmzoo_register_components(registry):
    registry.add_encoder("fixture-vector", "fixture_base_parts:VectorEncoder", modality="vector")
    registry.add_encoder("fixture-tied", "fixture_base_parts:TiedEncoder", modality="vector")
    registry.add_encoder("fixture-tokens", "fixture_base_parts:TokenEncoder", modality="sequence")
    registry.add_fusion("fixture-concat", "fixture_base_parts:Concat")
    registry.add_fusion("fixture-tokens-only", "fixture_base_parts:TokensOnly")
    registry.add_fusion("fixture-split", "fixture_base_parts:Split")
    registry.add_head("fixture-classify", "fixture_base_parts:Classify")
    registry.add_head("fixture-pairs", "fixture_base_parts:Pairs")
'''

BASE_PARTS = '''
import torch
from torch import nn
from torch.nn import functional as F

import mmzoo


class VectorEncoder(nn.Module):
    def __init__(self, in_dim: int, output_dim: int = 8, pretrained: bool = False):
        super().__init__()
        self.output_dim = output_dim
        self.pretrained = pretrained
        self.net = nn.Linear(in_dim, output_dim)

    def preprocess(self, examples):
        return torch.as_tensor([list(map(float, e)) for e in examples])

    def forward(self, x):
        return self.net(x)


class TiedEncoder(nn.Module):
    def __init__(self, output_dim: int = 4):
        super().__init__()
        self.output_dim = output_dim
        self.first = nn.Linear(output_dim, output_dim)
        self.second = nn.Linear(output_dim, output_dim)
        self.second.weight = self.first.weight  # tied inside the part, as language models do

    def preprocess(self, examples):
        return torch.as_tensor(examples, dtype=torch.float32)

    def forward(self, x):
        return self.second(torch.relu(self.first(x)))


class TokenEncoder(nn.Module):
    provides_tokens = False  # says so explicitly, to test the builder's check

    def __init__(self, output_dim: int = 8):
        super().__init__()
        self.output_dim = output_dim
        self.emb = nn.Embedding(10, output_dim)

    def preprocess(self, examples):
        return torch.as_tensor(examples)

    def forward(self, x):
        return self.emb(x).mean(dim=1)


class Concat(nn.Module):
    def __init__(self, input_dims: dict, dim: int | None = None):
        super().__init__()
        total = sum(input_dims.values())
        self.proj = nn.Linear(total, dim) if dim else nn.Identity()
        self.output_dim = dim or total

    def forward(self, features):
        return self.proj(torch.cat([f.pooled for f in features.values()], dim=-1))


class TokensOnly(Concat):
    requires_tokens = True


class Split(nn.Module):
    output_kind = "dict"

    def __init__(self, input_dims: dict, dim: int = 4):
        super().__init__()
        self.output_dim = dim
        self.proj = nn.ModuleDict({k: nn.Linear(d, dim) for k, d in input_dims.items()})

    def forward(self, features):
        return {k: self.proj[k](f.pooled) for k, f in features.items()}


class Classify(nn.Module):
    def __init__(self, input_dim: int, num_classes: int):
        super().__init__()
        self.fc = nn.Linear(input_dim, num_classes)

    def forward(self, fused):
        return self.fc(fused)

    def loss(self, outputs, target):
        return F.cross_entropy(outputs, target)


class Pairs(nn.Module):
    input_kind = "dict"
    requires_target = False

    def __init__(self, input_dim: int):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, fused):
        a, b = fused.values()
        return self.scale * a @ b.T

    def loss(self, outputs, target):
        labels = torch.arange(outputs.shape[0])
        return F.cross_entropy(outputs, labels)
'''


def install_base(install_plugin):
    """Install the fixture base parts as distribution 'mmzoo-fixture-base'."""
    return install_plugin("mmzoo-fixture-base", {"fixture_base": BASE_PLUGIN, "fixture_base_parts": BASE_PARTS},
                          {"base": "fixture_base"})


def install_foo(install_plugin):
    """Install the third-party 'mmzoo-foo' plugin (and the base parts it mixes with)."""
    install_base(install_plugin)
    root = install_plugin("mmzoo-foo", {"fixture_foo": FOO_PLUGIN, "fixture_foo_parts": FOO_PARTS},
                          {"foo": "fixture_foo"})
    (root / "fixture_foo_models.yaml").write_text(FOO_MODELS, encoding="utf-8")
    return root
