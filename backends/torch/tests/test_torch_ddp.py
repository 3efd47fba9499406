"""DistributedDataParallel (gloo, 2 CPU processes) on a features() model with
freeze_stages: trains without unused-parameter errors (the head after the deepest stage is
on DDP's ignore list), gradients agree across ranks, frozen parts stay bit-identical. The
same for truncate(..., input_shape=...): what runs after the cut is ignored."""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import theseus
import theseus_torch


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        net = theseus_torch.MobileNetV1(scale=0.25, class_num=10, seed=0)
        feat = theseus.features(net, out_indices=[1, 2, 3], input_shape=(1, 3, 32, 32))
        theseus.freeze_stages(net, 1, input_shape=(1, 3, 32, 32))
        ddp = torch.nn.parallel.DistributedDataParallel(feat)
        ddp.train()
        before = {k: v.detach().clone() for k, v in feat.state_dict().items()}
        opt = torch.optim.SGD([p for p in ddp.parameters() if p.requires_grad], lr=0.1)
        x = torch.from_numpy(np.random.RandomState(rank).standard_normal((2, 3, 32, 32)).astype(np.float32))
        grads = []
        for _ in range(3):
            opt.zero_grad()
            sum(o.square().mean() for o in ddp(x)).backward()
            grads.append({n: p.grad.clone() for n, p in feat.named_parameters() if p.grad is not None})
            opt.step()
            ddp.train()
        after = feat.state_dict()
        # truncate(..., input_shape=...) puts what runs after the cut on the ignore list too
        cut = theseus.truncate(theseus_torch.MobileNetV1(scale=0.25, class_num=10, seed=0), "blocks[6]",
                               input_shape=(1, 3, 32, 32))
        ddp_cut = torch.nn.parallel.DistributedDataParallel(cut)
        ddp_cut.train()
        cut_opt = torch.optim.SGD(ddp_cut.parameters(), lr=0.1)
        cut_grads = []
        for _ in range(2):
            cut_opt.zero_grad()
            ddp_cut(x).square().mean().backward()
            cut_grads.append({n: p.grad.clone() for n, p in cut.named_parameters() if p.grad is not None})
            cut_opt.step()
        torch.save({"before": before, "after": after, "grads": grads,
                    "frozen": theseus.frozen(net), "names": [n for n, _ in feat.named_parameters()],
                    "ignored": feat._ddp_params_and_buffers_to_ignore,
                    "cut_ignored": cut._ddp_params_and_buffers_to_ignore, "cut_grads": cut_grads},
                   os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="torch built without gloo")
def test_ddp_trains_features_with_frozen_stages(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    frozen = ("model.conv.", "model.blocks.0.", "model.blocks.1.", "model.blocks.2.")
    after_deepest = ("model.blocks.11.", "model.blocks.12.", "model.fc.")   # out_indices=[1, 2, 3]: blocks[10]
    assert r0["ignored"] == [k for k in r0["names"] if k.startswith(after_deepest)] and len(r0["ignored"]) == 2 * 6 + 2
    assert r0["frozen"][0] == "conv.conv.weight" and r0["frozen"][-1].startswith("blocks.2.")
    after_cut = [f"model.blocks.{i}.{p}.{w}" for i in range(7, 13)
                 for p in ("depthwise_conv", "pointwise_conv") for w in ("conv.weight", "bn.weight", "bn.bias")]
    assert sorted(r0["cut_ignored"]) == sorted(after_cut + ["model.fc.weight", "model.fc.bias"])
    for g0, g1 in zip(r0["cut_grads"], r1["cut_grads"]):   # the truncated model trained under DDP
        assert g0 and list(g0) == list(g1) and not any(k in r0["cut_ignored"] for k in g0)
        assert all(torch.equal(g0[k], g1[k]) for k in g0)
    for g0, g1 in zip(r0["grads"], r1["grads"]):   # DDP averaged: identical on both ranks
        assert list(g0) == list(g1) and g0 and not any(k.startswith(frozen) for k in g0)
        assert all(torch.equal(g0[k], g1[k]) for k in g0)
    for k, v in r0["before"].items():
        if k.startswith(frozen):
            assert torch.equal(r0["after"][k], v) and torch.equal(r1["after"][k], v), k
    changed = [k for k in r0["before"] if k.startswith("model.blocks.4.") and k.endswith("weight")]
    assert changed and all(not torch.equal(r0["after"][k], r0["before"][k]) for k in changed)
    # parameters identical on both ranks (running statistics are rank 0's broadcast, then
    # each rank's last forward: they may differ, as in any DDP run)
    assert all(torch.equal(r0["after"][k], r1["after"][k]) for k in r0["names"])


def test_truncate_input_shape_is_checked_before_anything_changes():
    net = theseus_torch.MobileNetV1(scale=0.25, class_num=10, seed=0)
    with pytest.raises(theseus.InvalidArgumentError, match="truncate: input_shape"):
        theseus.truncate(net, "blocks[6]", input_shape=(1, 3, 0, 32))
    with pytest.raises(theseus.InvalidArgumentError, match="truncate: the probe forward"):
        theseus.truncate(net, "blocks[6]", input_shape=(1, 5, 32, 32))   # 5 channels: the conv refuses
    assert not hasattr(net, "_ddp_params_and_buffers_to_ignore") and net.training
    assert not any(m._forward_hooks for m in net.modules())   # no hook left behind
    plain = theseus.truncate(net, "blocks[6]")   # no input_shape: nothing runs, nothing ignored
    assert not hasattr(plain, "_ddp_params_and_buffers_to_ignore")
