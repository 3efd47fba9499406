"""theseus's built-in model parts, written once for every framework.

``BuildNet``, ``GlobalAveragePooling``, ``FPN``, ``LinearClsHead`` and
``StackedLinearClsHead`` are framework-free classes here; a backend supplies a few
primitives (:class:`Primitives`: its layer base class, a handful of layer constructors and
three tensor functions) and :func:`register_parts` turns each part into a native layer class
(``class FPN(FPNPart, nn.Module)``) registered for ``theseus.build``. Arguments are checked
in ``theseus._specs``; the parts only build and run. Same names and structure on every
backend: ``BuildNet.backbone/neck/head``, ``FPN.lateral_convs[i].conv``,
``StackedLinearClsHead.layers[i].fc``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, Mapping

from ._registry import register

__all__ = ["Primitives", "native_classes", "register_parts"]


@dataclass(frozen=True)
class Primitives:
    """What a backend supplies so that the built-in parts exist on its framework.

    Attributes:
        base: the framework's layer class (``torch.nn.Module``, ``paddle.nn.Layer``, ...).
        layers: constructors under the conformance spec's node names (the same table the
            backend's spec builder uses): ``conv(cin, cout, k, stride, padding, groups, bias)``,
            ``linear(cin, cout)``, ``pool()`` (adaptive average to 1x1), ``list(layers)`` and
            ``seq(layers)`` (the framework's layer list and sequential), ``dropout(p)``.
        upsample: ``(x, like) -> x`` resized (nearest) to ``like``'s spatial size.
        relu: the functional ReLU.
        cross_entropy: ``(logits, labels) -> mean loss``.
        activations: ``{name: factory}`` for every name of ``theseus._specs.ACTIVATION_ARGS``.
        forward: the name of the framework's forward method (MindSpore: ``"construct"``).

    Example:
        >>> register_parts("torch", Primitives(nn.Module, LAYERS, upsample, F.relu,   # doctest: +SKIP
        ...                                    F.cross_entropy, ACTIVATIONS))
    """

    base: type
    layers: Mapping[str, Callable[..., Any]]
    upsample: Callable[[Any, Any], Any]
    relu: Callable[[Any], Any]
    cross_entropy: Callable[[Any, Any], Any]
    activations: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    forward: str = "forward"


def _last(x: Any) -> Any:
    return x[-1] if isinstance(x, (list, tuple)) else x


class _Part:
    """Base of the framework-free parts: ``self._p`` is the backend's ``Primitives``; a part
    whose forward runs its children in order lists their names in ``self._order``."""

    _p: Primitives

    def _run_in_order(self, x: Any) -> Any:
        for name in self._order:
            x = getattr(self, name)(x)
        return x


class BuildNet(_Part):
    """``backbone -> neck -> head`` (the parts given)."""

    def __init__(self, backbone: Any = None, neck: Any = None, head: Any = None) -> None:
        super().__init__()
        order = []
        for name, part in (("backbone", backbone), ("neck", neck), ("head", head)):
            if part is not None:
                setattr(self, name, part)
                order.append(name)
        self._order = tuple(order)

    def forward(self, x: Any) -> Any:
        return self._run_in_order(x)


class GlobalAveragePooling(_Part):
    """Global average pooling of a map, or of each map of a tuple, to ``(N, C)``."""

    def __init__(self) -> None:
        super().__init__()
        self.gap = self._p.layers["pool"]()

    def forward(self, x: Any) -> Any:
        if isinstance(x, (list, tuple)):
            return tuple(self.gap(t).reshape((t.shape[0], -1)) for t in x)
        return self.gap(x).reshape((x.shape[0], -1))


class ConvModule(_Part):
    """One ``conv`` (with bias, padding ``k // 2``)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = self._p.layers["conv"](cin, cout, k, stride, k // 2, 1, True)

    def forward(self, x: Any) -> Any:
        return self.conv(x)


class FPN(_Part):
    """Feature pyramid (MMDetection semantics) from an ``FPNPlan`` (``theseus._specs``)."""

    def __init__(self, plan: Any) -> None:
        super().__init__()
        self.plan = plan
        conv, layer_list = self._native["ConvModule"], self._p.layers["list"]
        self.lateral_convs = layer_list([conv(i, o, 1) for i, o in plan.lateral])
        self.fpn_convs = layer_list([conv(i, o, 3, s) for i, o, s in plan.fpn])

    def forward(self, inputs: Any) -> tuple:
        p, up = self.plan, self._p.upsample
        lat = [conv(inputs[i + p.start_level]) for i, conv in enumerate(self.lateral_convs)]
        for i in range(len(lat) - 1, 0, -1):
            lat[i - 1] = lat[i - 1] + up(lat[i], lat[i - 1])
        outs = [self.fpn_convs[i](lat[i]) for i in range(len(lat))]
        for i in range(len(lat), p.num_outs):
            if p.extra is None:
                outs.append(outs[-1][:, :, ::2, ::2])  # max_pool2d(kernel 1, stride 2)
                continue
            src = outs[-1]
            if i == len(lat):
                src = {"on_input": inputs[p.end_level - 1], "on_lateral": lat[-1]}.get(p.extra, outs[-1])
            elif p.relu_before_extra_convs:
                src = self._p.relu(src)
            outs.append(self.fpn_convs[i](src))
        return tuple(outs)


class _ClsHead(_Part):
    def __init__(self, num_classes: int, loss_weight: float, topk: tuple) -> None:
        super().__init__()
        self.num_classes, self.loss_weight, self.topk = num_classes, loss_weight, topk

    def loss(self, cls_score: Any, gt_label: Any) -> dict:
        """``{"loss": loss_weight * cross_entropy(cls_score, gt_label)}``."""
        return {"loss": self._p.cross_entropy(cls_score, gt_label) * self.loss_weight}


class LinearClsHead(_ClsHead):
    """One ``fc``; a tuple input uses its last element."""

    def __init__(self, num_classes: int, in_channels: int, loss_weight: float = 1.0, topk: tuple = (1,)) -> None:
        super().__init__(num_classes, loss_weight, topk)
        self.fc = self._p.layers["linear"](in_channels, num_classes)

    def forward(self, x: Any) -> Any:
        return self.fc(_last(x))


class LinearBlock(_Part):
    """``fc`` (+ ``act``, + ``dropout``)."""

    def __init__(self, cin: int, cout: int, act: Any = None, dropout_rate: float = 0.0) -> None:
        super().__init__()
        self.fc = self._p.layers["linear"](cin, cout)
        order = ["fc"]
        if act is not None:
            self.act = act()
            order.append("act")
        if dropout_rate:
            self.dropout = self._p.layers["dropout"](dropout_rate)
            order.append("dropout")
        self._order = tuple(order)

    def forward(self, x: Any) -> Any:
        return self._run_in_order(x)


class StackedLinearClsHead(_ClsHead):
    """``layers[i]`` = ``LinearBlock`` per ``mid_channels``, then one without act/dropout."""

    def __init__(self, num_classes: int, in_channels: int, mid_channels: tuple, dropout_rate: float = 0.0,
                 act: Any = None, loss_weight: float = 1.0, topk: tuple = (1,)) -> None:
        super().__init__(num_classes, loss_weight, topk)
        ch, block = [in_channels, *mid_channels], self._native["LinearBlock"]
        self.layers = self._p.layers["list"]([block(a, b, act, dropout_rate) for a, b in zip(ch, ch[1:])]
                                             + [block(ch[-1], num_classes)])

    def forward(self, x: Any) -> Any:
        x = _last(x)
        for layer in self.layers:
            x = layer(x)
        return x


_PARTS = {"model": [BuildNet], "neck": [GlobalAveragePooling, FPN], "head": [LinearClsHead, StackedLinearClsHead]}
_HELPERS = (ConvModule, LinearBlock)


def native_classes(parts: list, base: type, forward: str, module: str, **attrs: Any) -> dict[str, type]:
    """``class Name(part, base)`` for each framework-free ``part``, its ``forward`` bound to
    the framework's forward method name, reporting ``module`` as its module; ``attrs`` and
    ``_native`` (these classes by name, so that parts build each other) as class attributes.

    Example:
        >>> classes = native_classes([FPN], torch.nn.Module, "forward", __name__, _p=prims)   # doctest: +SKIP
    """
    native: dict[str, type] = {}
    for part in parts:
        native[part.__name__] = type(part.__name__, (part, base), {
            "__module__": module, "__qualname__": part.__name__, "__doc__": part.__doc__, "_native": native,
            forward: part.forward, **attrs})
    return native


def register_parts(backend: str, p: Primitives, module: str) -> dict[str, type]:
    """Make the built-in parts native on ``backend`` and register them (and ``Sequential``
    and ``p.activations``) for ``theseus.build``.

    Args:
        backend: the backend's name.
        p: its primitives.
        module: the ``__module__`` the native classes report (the backend's parts module).

    Returns:
        ``{class name: native class}``.
    """
    native = native_classes([*_HELPERS, *(c for cs in _PARTS.values() for c in cs)], p.base, p.forward, module, _p=p)
    reg = partial(register, backend=backend)
    for kind, parts in _PARTS.items():
        for part in parts:
            reg(kind, part.__name__)(native[part.__name__])
    reg("model", "Sequential")(p.layers["seq"])
    for name, make in p.activations.items():
        reg("activation", name)(make)
    return native
