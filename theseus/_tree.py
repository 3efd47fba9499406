"""The seed's tree drawing: every layer with its descriptor and type, and output shapes
when an input shape is given (measured by one forward with hooks, then removed)."""

from __future__ import annotations

import threading
from typing import Any, Optional, Sequence

from ._backend import backend_of
from ._validate import check_input_shape
from ._walk import children_of, probe_forward, root_node

__all__ = ["tree"]


def _fmt_shape(backend: Any, out: Any) -> str:
    shp = backend.shape(out)
    if shp is not None:
        return "(" + ", ".join(str(s) for s in shp) + ")"
    if isinstance(out, dict):
        return "{" + ", ".join(f"{k}: {_fmt_shape(backend, v)}" for k, v in out.items()) + "}"
    if isinstance(out, (list, tuple)):
        return "[" + ", ".join(_fmt_shape(backend, v) for v in out) + "]"
    return type(out).__name__


def tree(model: Any, input_shape: Optional[Sequence[int]] = None) -> str:
    """Draw the layer tree as in the seed, one line per layer: descriptor (type).

    Args:
        model: a model of any registered backend.
        input_shape: if given (e.g. ``(1, 3, 224, 224)``), one forward on zeros, in eval
            mode, measures each layer's output shape, shown after an arrow; the model's
            training flags and running statistics are left as they were.

    Example:
        >>> print(theseus.tree(net).splitlines()[1])   # doctest: +SKIP
        ├── conv (ConvBNLayer)
    """
    backend = backend_of(model)
    shapes: dict[int, str] = {}
    if input_shape is not None:
        input_shape = check_input_shape(input_shape, "tree: input_shape")
        backend.check_hooks_usable(model)
        nodes = []
        stack = [root_node(model)]
        while stack:
            n = stack.pop()
            nodes.append(n)
            stack.extend(children_of(backend, n))
        me = threading.get_ident()
        handles = []

        def hook_for(i):
            def hook(layer, inputs, output):
                if threading.get_ident() == me and i not in shapes:
                    shapes[i] = _fmt_shape(backend, output)
            return hook

        try:
            for n in nodes:
                handles.append(backend.add_forward_hook(n.layer, hook_for(id(n.layer))))
            probe_forward(backend, model, input_shape, "tree")
        finally:
            for h in handles:
                h.remove()

    lines = []
    root = root_node(model)

    def label(n) -> str:
        name = n.text or backend.type_name(n.layer)
        s = f"{name} ({backend.type_name(n.layer)})"
        if id(n.layer) in shapes:
            s += f" -> {shapes[id(n.layer)]}"
        return s

    lines.append(label(root))

    def draw(n, prefix: str) -> None:
        kids = children_of(backend, n)
        for i, k in enumerate(kids):
            last = i == len(kids) - 1
            lines.append(prefix + ("└── " if last else "├── ") + label(k))
            draw(k, prefix + ("    " if last else "│   "))

    draw(root, "")
    return "\n".join(lines)
