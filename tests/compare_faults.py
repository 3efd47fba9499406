"""Fault injection for compare's tests and benchmark: six kinds of real porting faults,
applied to a live destination model of any of the three frameworks and undone afterwards.

Kinds (each names the layer it breaks):
    swap_channels  two output channels of one conv exchanged (weight rows; mean-preserving)
    swap_stats     a BatchNorm's running mean and variance exchanged
    transpose      a square conv weight ([out, in, k, k] read as [in, out, k, k]; 1x1 or not) or
                   a square Linear weight transposed
    eps            a norm layer's eps 1e-5 -> 1e-3
    relu6          one ReLU replaced by ReLU6
    padding        one stride-2 conv (kernel > 1) padded TF-'same' (one pixel less on the
                   top/left, one more on the bottom/right, as TF does for an even input)
                   instead of symmetrically, in both spatial dims or only one
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

import theseus
from theseus._walk import lookup, walk

KINDS = ("swap_channels", "swap_stats", "transpose", "eps", "relu6", "padding")


class Framework:
    """What the fault kinds need from one framework."""

    name: str

    def __init__(self) -> None:
        self.B = theseus.get_backend(self.name)

    # overridden
    def mobilenet(self, **kw) -> Any: ...
    def relu6(self) -> Any: ...
    def bn(self, channels: int, eps: float) -> Any: ...
    def pad_tf_same(self, conv: Any, dims: str) -> Callable[[], None]: ...
    def conv_stride(self, conv: Any) -> int: ...

    def pads(self, conv: Any, dims: str) -> list:
        """[left, right, top, bottom] of a TF-'same' stride-2 conv of kernel k on an even input
        (total k - 2, the extra pixel at the end) in ``dims``, symmetric (k - 1) // 2 elsewhere."""
        k = int(self.B.export_local(conv)["weight"].shape[-1])
        sym = (k - 1) // 2
        tf = ((k - 2) // 2, k - 2 - (k - 2) // 2)
        w = tf if "w" in dims else (sym, sym)
        h = tf if "h" in dims else (sym, sym)
        return [w[0], w[1], h[0], h[1]]

    # helpers
    def replace(self, model: Any, desc: str, new: Any) -> Callable[[], None]:
        node = lookup(self.B, model, desc)
        parent, name, old = node.parent.layer, node.name, node.layer
        self.B.replace_child(parent, name, new)
        self.B.after_surgery(model)

        def undo() -> None:
            self.B.replace_child(parent, name, old)
            self.B.after_surgery(model)
        return undo


class Torch(Framework):
    name = "torch"

    def mobilenet(self, **kw):
        import theseus_torch
        return theseus_torch.MobileNetV1(**kw)

    def relu6(self):
        import torch
        return torch.nn.ReLU6()

    def bn(self, channels, eps):
        import torch
        return torch.nn.BatchNorm2d(channels, eps=eps)

    def conv_stride(self, conv):
        return int(conv.stride[0])

    def pad_tf_same(self, conv, dims):
        import torch.nn.functional as F

        pad = tuple(self.pads(conv, dims))

        def forward(x):
            return F.conv2d(F.pad(x, pad), conv.weight, conv.bias, conv.stride, 0, conv.dilation, conv.groups)
        conv.forward = forward
        return lambda: delattr(conv, "forward")


class Paddle(Framework):
    name = "paddle"

    def mobilenet(self, **kw):
        import theseus_paddle
        return theseus_paddle.MobileNetV1(**kw)

    def relu6(self):
        import paddle
        return paddle.nn.ReLU6()

    def bn(self, channels, eps):
        import paddle
        return paddle.nn.BatchNorm2D(channels, epsilon=eps)

    def conv_stride(self, conv):
        return int(conv._stride[0])

    def pad_tf_same(self, conv, dims):
        import paddle.nn.functional as F

        pad = self.pads(conv, dims)

        def forward(x):
            return F.conv2d(F.pad(x, pad), conv.weight, conv.bias, conv._stride, 0, conv._dilation, conv._groups)
        conv.forward = forward
        return lambda: delattr(conv, "forward")


class MindSpore(Framework):
    name = "mindspore"

    def mobilenet(self, **kw):
        import theseus_mindspore
        return theseus_mindspore.MobileNetV1(**kw)

    def relu6(self):
        from theseus_mindspore._runtime import mindspore
        return mindspore.nn.ReLU6()

    def bn(self, channels, eps):
        from theseus_mindspore._runtime import mindspore
        return mindspore.nn.BatchNorm2d(channels, eps=eps, momentum=0.9)

    def conv_stride(self, conv):
        s = conv.stride
        return int(s[-1] if isinstance(s, (tuple, list)) else s)

    def pad_tf_same(self, conv, dims):
        from theseus_mindspore._runtime import mindspore

        ops = mindspore.ops
        pad = tuple(self.pads(conv, dims))

        def construct(x):
            return ops.conv2d(ops.pad(x, pad), conv.weight, None, conv.stride, "valid", 0, conv.dilation, conv.group)
        conv.construct = construct
        return lambda: delattr(conv, "construct")


FRAMEWORKS = {"torch": Torch, "paddle": Paddle, "mindspore": MindSpore}


def randomize_norms(model: Any, seed: int) -> None:
    """Non-trivial BatchNorm weights and statistics (through the neutral state)."""
    rng = np.random.RandomState(seed)
    sd = theseus.state(model)
    for k, v in sd.items():
        if k.endswith(".running_mean"):
            sd[k] = rng.normal(0, 0.1, v.shape).astype(v.dtype)
        elif k.endswith(".running_var"):
            sd[k] = rng.uniform(0.5, 2.0, v.shape).astype(v.dtype)
        elif k.endswith(".weight") and v.ndim == 1:
            sd[k] = rng.uniform(0.7, 1.5, v.shape).astype(v.dtype)
        elif k.endswith(".bias") and v.ndim == 1:
            sd[k] = rng.normal(0, 0.1, v.shape).astype(v.dtype)
    theseus.load_state(model, sd)


def sites(fw: Framework, model: Any, called: Optional[set] = None) -> dict[str, list[str]]:
    """Candidate layers of each kind, by descriptor (only those in ``called`` when given: a
    layer the forward never calls cannot show a fault)."""
    B = fw.B
    out: dict[str, list[str]] = {k: [] for k in KINDS}
    for node in walk(B, model):
        if called is not None and node.text not in called:
            continue
        w = B.export_local(node.layer)
        t = B.type_name(node.layer)
        if "running_var" in w:
            out["swap_stats"].append(node.text)
            out["eps"].append(node.text)
        elif "weight" in w and w["weight"].ndim == 4:
            out["swap_channels"].append(node.text)
            s = w["weight"].shape
            if s[0] == s[1]:
                out["transpose"].append(node.text)
            if fw.conv_stride(node.layer) == 2 and s[-1] > 1:
                out["padding"].append(node.text)
        elif "weight" in w and w["weight"].ndim == 2 and w["weight"].shape[0] == w["weight"].shape[1]:
            out["transpose"].append(node.text)
        elif t == "ReLU":
            out["relu6"].append(node.text)
    return out


def plan(fw: Framework, model: Any, per_kind: int = 10, seed: int = 2026,
         called: Optional[set] = None) -> list[tuple[str, str, Any]]:
    """``(kind, descriptor, detail)`` for ``per_kind`` random sites of each kind. Kinds with
    fewer sites than draws cover every site, then repeat random ones (other channels/dims)."""
    rng = np.random.RandomState(seed)
    cand = sites(fw, model, called)
    out = []
    for kind in KINDS:
        c = cand[kind]
        order = list(rng.permutation(len(c)))
        while len(order) < per_kind:
            order.append(int(rng.randint(len(c))))
        for i in order[:per_kind]:
            desc = c[i]
            if kind == "swap_channels":
                n = fw.B.export_local(lookup(fw.B, model, desc).layer)["weight"].shape[0]
                detail = tuple(int(v) for v in sorted(rng.choice(n, 2, replace=False)))
            elif kind == "padding":
                detail = ("hw", "h", "w")[int(rng.randint(3))]
            else:
                detail = None
            out.append((kind, desc, detail))
    return out


def inject(fw: Framework, model: Any, kind: str, desc: str, detail: Any = None) -> Callable[[], None]:
    """Break ``desc`` of ``model``; returns the undo."""
    B = fw.B
    layer = lookup(B, model, desc).layer
    if kind in ("swap_channels", "swap_stats", "transpose"):
        orig = B.export_local(layer)
        w = {k: v.copy() for k, v in orig.items()}
        if kind == "swap_channels":
            i, j = detail
            for k in ("weight", "bias"):
                if k in w:
                    w[k][[i, j]] = w[k][[j, i]]
        elif kind == "swap_stats":
            w["running_mean"], w["running_var"] = orig["running_var"].copy(), orig["running_mean"].copy()
        else:
            w["weight"] = np.ascontiguousarray(np.swapaxes(w["weight"], 0, 1))
        B.import_local(layer, w)
        return lambda: B.import_local(layer, orig)
    if kind == "eps":
        arrays = B.export_local(layer)
        new = fw.bn(arrays["running_var"].shape[0], 1e-3)
        B.set_training(new, False)
        B.import_local(new, arrays)
        return fw.replace(model, desc, new)
    if kind == "relu6":
        return fw.replace(model, desc, fw.relu6())
    if kind == "padding":
        return fw.pad_tf_same(layer, detail)
    raise ValueError(kind)


# ----------------------------------------------------------------------------------------
# the ResNet50 ports: three third-party implementations
# ----------------------------------------------------------------------------------------

#: which implementation stands for each framework
RESNET50 = {"torch": "timm resnet50", "paddle": "PaddleClas ResNet50", "mindspore": "MindCV resnet50"}
RESNET_SCALE = 4.0   # input std: every ReLU call of the recorded runs sees values > 6.5


def resnet50_ports(shape: tuple = (1, 3, 64, 64), seed: int = 7) -> tuple[dict, dict]:
    """``({framework: model}, {(src fw, dst fw): PortMap})``: timm, PaddleClas and MindCV
    ResNet50 (random init, 2048 classes so that fc is square), BatchNorm statistics and
    affine weights randomised on the timm model and ported to the two others through
    ``theseus.match``/``theseus.port``. MindCV's TF-'same' max-pool is replaced by the source's
    symmetric one (``port(fix_padding=True)``), so the three agree at even input sizes too.
    Import ``theseus_mindspore`` before paddle (MindSpore's oneDNN first)."""
    from theseus_conformance import peers

    models = {"torch": peers.timm_model("resnet50", num_classes=2048),
              "paddle": peers.ppcls_model("ResNet50", class_num=2048),
              "mindspore": peers.mindcv_model("resnet50", num_classes=2048)}
    randomize_norms(models["torch"], seed)
    x = theseus.make_input(shape, 0, RESNET_SCALE)
    for name in ("paddle", "mindspore"):
        pm = theseus.match(models["torch"], models[name], x)
        report = theseus.port(models["torch"], models[name], map=pm, example_input=x, fix_padding=True)
        if not report.ok:
            raise AssertionError(f"torch -> {name}: {report.summary()}")
    maps = {}
    for a, b in (("torch", "paddle"), ("torch", "mindspore"), ("paddle", "mindspore")):
        maps[a, b] = theseus.match(models[a], models[b], x)
        maps[b, a] = maps[a, b].inverse()
    return models, maps


def called_layers(model: Any, x: np.ndarray) -> set:
    """Descriptors of the layers one forward of ``model`` on ``x`` calls."""
    from theseus._compare import run_capturing

    return set(run_capturing(model, x)[1])


def first_named(report: Any, kind: str, desc: str) -> bool:
    """Is the injected destination layer ``desc`` the report's first fault, found in isolation?"""
    f = report.first_fault
    return f is not None and f.dst_layer == desc and f.iso is not None and f.iso.flagged


# The likely cause compare must name for each injected fault kind (a substring of report.cause).
EXPECTED_CAUSE = {
    "swap_channels": "swapped",
    "swap_stats": "running mean and variance swapped",
    "transpose": "transposed weight",
    "eps": "eps differs: destination ~0.001",
    "relu6": "clipped at 6",
    "padding": "padding convention: the destination pads ",
}
