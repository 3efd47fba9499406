"""One small model per framework with every kind of tensor the neutral layout must carry:
a root-level parameter, a per-block scale parameter, Embedding, LayerNorm, the framework's
multi-head attention, PReLU, GroupNorm, BatchNorm1d and Linear. The three are the same
network, so a neutral state ported between them must give the same outputs."""

from __future__ import annotations

import importlib.util

import numpy as np

E, HEADS, VOCAB, CLASSES = 8, 2, 10, 4
FRAMEWORKS = [f for f in ("torch", "paddle", "mindspore") if importlib.util.find_spec(f)]


def build(fw: str):
    """A fresh instance, eval mode, framework default init."""
    return {"torch": _torch, "paddle": _paddle, "mindspore": _mindspore}[fw]()


def framework_count(fw: str, net) -> int:
    """How many parameters + persistent buffers the framework itself lists."""
    if fw == "mindspore":
        return len(list(net.parameters_and_names()))
    return len(net.state_dict())


def run(fw: str, net, ids: np.ndarray) -> np.ndarray:
    """Forward on integer token ids ``[B, T]``; numpy logits."""
    if fw == "torch":
        import torch

        with torch.no_grad():
            return net(torch.from_numpy(ids.astype(np.int64))).numpy()
    if fw == "paddle":
        import paddle

        with paddle.no_grad():
            return net(paddle.to_tensor(ids.astype(np.int64))).numpy()
    import mindspore as ms

    return net(ms.Tensor(ids.astype(np.int32))).asnumpy()


def random_state(state: dict, seed: int = 0) -> dict:
    """Every tensor of ``state`` replaced by seeded random values (variances positive)."""
    rs = np.random.RandomState(seed)
    out = {}
    for k, v in state.items():
        if k.endswith("num_batches_tracked"):
            out[k] = np.full(v.shape, 7, v.dtype)
        elif k.endswith("running_var"):
            out[k] = rs.uniform(0.5, 1.5, v.shape).astype(v.dtype)
        else:
            out[k] = (rs.standard_normal(v.shape) * 0.5).astype(v.dtype)
    return out


def _torch():
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = nn.LayerNorm(E)
            self.attn = nn.MultiheadAttention(E, HEADS, batch_first=True)
            self.gamma = nn.Parameter(torch.full((E,), 0.5))
            self.mlp = nn.Linear(E, E)
            self.act = nn.PReLU()

        def forward(self, x):
            h = self.norm(x)
            x = x + self.gamma * self.attn(h, h, h, need_weights=False)[0]
            return x + self.act(self.mlp(x))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.cls_token = nn.Parameter(torch.zeros(1, 1, E))
            self.embed = nn.Embedding(VOCAB, E)
            self.blocks = nn.ModuleList([Block(), Block()])
            self.gn = nn.GroupNorm(2, E)
            self.bn = nn.BatchNorm1d(E)
            self.head = nn.Linear(E, CLASSES)

        def forward(self, ids):
            x = self.embed(ids) + self.cls_token
            for b in self.blocks:
                x = b(x)
            y = self.gn(x.transpose(1, 2).unsqueeze(-1)).mean(dim=(2, 3))
            return self.head(self.bn(y))

    return Net().eval()


def _paddle():
    from paddle import nn

    class Block(nn.Layer):
        def __init__(self):
            super().__init__()
            self.norm = nn.LayerNorm(E)
            self.attn = nn.MultiHeadAttention(E, HEADS)
            self.gamma = self.create_parameter([E], default_initializer=nn.initializer.Constant(0.5))
            self.mlp = nn.Linear(E, E)
            self.act = nn.PReLU()

        def forward(self, x):
            h = self.norm(x)
            x = x + self.gamma * self.attn(h, h, h)
            return x + self.act(self.mlp(x))

    class Net(nn.Layer):
        def __init__(self):
            super().__init__()
            self.cls_token = self.create_parameter([1, 1, E], default_initializer=nn.initializer.Constant(0.0))
            self.embed = nn.Embedding(VOCAB, E)
            self.blocks = nn.LayerList([Block(), Block()])
            self.gn = nn.GroupNorm(2, E)
            self.bn = nn.BatchNorm1D(E)
            self.head = nn.Linear(E, CLASSES)

        def forward(self, ids):
            x = self.embed(ids) + self.cls_token
            for b in self.blocks:
                x = b(x)
            y = self.gn(x.transpose([0, 2, 1]).unsqueeze(-1)).mean(axis=[2, 3])
            return self.head(self.bn(y))

    net = Net()
    net.eval()
    return net


def _mindspore():
    from theseus_mindspore._runtime import mindspore as ms  # oneDNN preload, even after paddle
    from mindspore import nn, ops

    class Block(nn.Cell):
        def __init__(self):
            super().__init__()
            self.norm = nn.LayerNorm((E,), epsilon=1e-5)
            self.attn = nn.MultiheadAttention(E, HEADS, batch_first=True)
            self.gamma = ms.Parameter(ms.Tensor(np.full((E,), 0.5, np.float32)), name="gamma")
            self.mlp = nn.Dense(E, E)
            self.act = nn.PReLU()

        def construct(self, x):
            h = self.norm(x)
            x = x + self.gamma * self.attn(h, h, h, need_weights=False)[0]
            return x + self.act(self.mlp(x))

    class Net(nn.Cell):
        def __init__(self):
            super().__init__()
            self.cls_token = ms.Parameter(ms.Tensor(np.zeros((1, 1, E), np.float32)), name="cls_token")
            self.embed = nn.Embedding(VOCAB, E)
            self.blocks = nn.CellList([Block(), Block()])
            self.gn = nn.GroupNorm(2, E)
            self.bn = nn.BatchNorm1d(E)
            self.head = nn.Dense(E, CLASSES)

        def construct(self, ids):
            x = self.embed(ids) + self.cls_token
            for b in self.blocks:
                x = b(x)
            y = self.gn(ops.expand_dims(x.transpose(0, 2, 1), -1)).mean(axis=(2, 3))
            return self.head(self.bn(y))

    net = Net()
    net.set_train(False)
    return net
