"""paddle.DataParallel (gloo, 2 CPU processes) on a features() model with freeze_stages:
gradients agree across ranks, frozen parts stay bit-identical. Paddle has no per-module
ignore list for parameters that never run (the head after the deepest stage), so
``find_unused_parameters=True`` is needed (docs/framework-traps.md)."""

from __future__ import annotations

import os
import pickle

import numpy as np
import paddle
import paddle.distributed as dist
import pytest

import theseus
import theseus_paddle


def _worker(out_dir: str) -> None:
    dist.init_parallel_env()
    rank = dist.get_rank()
    net = theseus_paddle.MobileNetV1(scale=0.25, class_num=10, seed=0)
    feat = theseus.features(net, out_indices=[1, 2, 3], input_shape=(1, 3, 32, 32))
    theseus.freeze_stages(net, 1, input_shape=(1, 3, 32, 32))
    dp = paddle.DataParallel(feat, find_unused_parameters=True)
    dp.train()
    before = {k: v.numpy().copy() for k, v in feat.state_dict().items()}
    opt = paddle.optimizer.SGD(learning_rate=0.1, parameters=[p for p in dp.parameters() if not p.stop_gradient])
    x = paddle.to_tensor(np.random.RandomState(rank).standard_normal((2, 3, 32, 32)).astype("float32"))
    grads = []
    for _ in range(3):
        sum((o ** 2).mean() for o in dp(x)).backward()
        grads.append({n: p.grad.numpy().copy() for n, p in feat.named_parameters() if p.grad is not None})
        opt.step()
        opt.clear_grad()
        dp.train()
    after = {k: v.numpy().copy() for k, v in feat.state_dict().items()}
    names = [n for n, _ in feat.named_parameters()]
    with open(os.path.join(out_dir, f"rank{rank}.pkl"), "wb") as f:
        pickle.dump({"before": before, "after": after, "grads": grads, "names": names}, f)


@pytest.mark.skipif(not hasattr(dist, "spawn"), reason="paddle without distributed")
def test_data_parallel_trains_features_with_frozen_stages(tmp_path):
    dist.spawn(_worker, args=(str(tmp_path),), nprocs=2, backend="gloo")
    r0, r1 = (pickle.load(open(tmp_path / f"rank{r}.pkl", "rb")) for r in (0, 1))
    frozen = ("model.conv.", "model.blocks.0.", "model.blocks.1.", "model.blocks.2.")
    for g0, g1 in zip(r0["grads"], r1["grads"]):
        assert g0 and list(g0) == list(g1) and not any(k.startswith(frozen) for k in g0)
        assert all(np.array_equal(g0[k], g1[k]) for k in g0)
    for k, v in r0["before"].items():
        if k.startswith(frozen):
            assert np.array_equal(r0["after"][k], v) and np.array_equal(r1["after"][k], v), k
    changed = [k for k in r0["names"] if k.startswith("model.blocks.4.") and k.endswith("weight")]
    assert changed and all(not np.array_equal(r0["after"][k], r0["before"][k]) for k in changed)
    # trained parameters identical on both ranks (Paddle lists BN statistics among parameters:
    # each rank's own, as in any DataParallel run)
    diff = [k for k in r0["names"] if not k.endswith(("_mean", "_variance"))
            and not np.array_equal(r0["after"][k], r1["after"][k])]
    assert diff == [], (diff[:5], [float(np.abs(r0["after"][k] - r1["after"][k]).max()) for k in diff[:5]])
