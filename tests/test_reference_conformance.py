"""The conformance suite on the framework-free reference backend, registered through the
public ``theseus.register_backend`` (as a third-party backend would be), and the reference
layers checked against naive loop implementations (the oracle must be right)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import theseus
from theseus_conformance import ConformanceSuite
from theseus_conformance.reference import (AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Linear, MobileNetV1,
                                           ReferenceBackend, build)


class TestReferenceConformance(ConformanceSuite):
    @pytest.fixture(scope="class")
    def backend(self):
        theseus.register_backend(ReferenceBackend(), replace=True)
        return theseus.get_backend("reference")

    @pytest.fixture(scope="class")
    def mobilenet(self):
        return MobileNetV1

    @pytest.fixture(scope="class")
    def build(self):
        return build


# -- the oracle: naive loops in float64 ------------------------------------------------------
def _naive_conv(x, w, b, stride, pad, groups):
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.zeros((n, c, h + 2 * pad, wd + 2 * pad))
    xp[:, :, pad:pad + h, pad:pad + wd] = x
    oh, ow = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
    out = np.zeros((n, o, oh, ow))
    for ni in range(n):
        for oc in range(o):
            g = oc // (o // groups)
            for y in range(oh):
                for z in range(ow):
                    acc = 0.0 if b is None else float(b[oc])
                    for ci in range(cg):
                        for i in range(kh):
                            for j in range(kw):
                                acc += xp[ni, g * cg + ci, y * stride + i, z * stride + j] * w[oc, ci, i, j]
                    out[ni, oc, y, z] = acc
    return out


@pytest.mark.parametrize("cin,cout,k,stride,pad,groups,bias", [
    (4, 6, 3, 1, 1, 1, True),    # groups=1, padding 1
    (4, 6, 3, 2, 1, 1, False),   # stride 2
    (4, 4, 3, 1, 1, 4, False),   # depthwise (groups=cin)
    (4, 8, 3, 2, 1, 4, True),    # depthwise with multiplier 2, stride 2
    (4, 6, 3, 2, 0, 2, True),    # 2 groups, no padding
    (3, 5, 1, 1, 0, 1, True),    # pointwise
])
def test_conv_matches_naive(cin, cout, k, stride, pad, groups, bias):
    conv = Conv2d(cin, cout, k, stride=stride, padding=pad, groups=groups, bias=bias)
    x = np.random.RandomState(3).standard_normal((2, cin, 7, 9)).astype(np.float32)
    b = conv.bias.data if bias else None
    got = conv(x)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, _naive_conv(x, conv.weight.data, b, stride, pad, groups), rtol=0, atol=1e-5)


def test_batchnorm_linear_pool_match_naive():
    rs = np.random.RandomState(4)
    x = rs.standard_normal((3, 2, 4, 5)).astype(np.float32)
    bn = BatchNorm2d(2)
    bn.weight.data[:] = [1.5, -0.5]
    bn.bias.data[:] = [0.1, 0.2]
    vals = [x[:, c].ravel().astype(np.float64) for c in range(2)]
    mean = np.array([sum(v) / len(v) for v in vals])
    var = np.array([sum((t - m) ** 2 for t in v) / len(v) for v, m in zip(vals, mean)])
    want = np.empty(x.shape)
    for c in range(2):
        want[:, c] = (x[:, c] - mean[c]) / np.sqrt(var[c] + 1e-5) * bn.weight.data[c] + bn.bias.data[c]
    np.testing.assert_allclose(bn(x), want, rtol=0, atol=1e-5)  # training: batch statistics
    np.testing.assert_allclose(bn.running_mean, 0.1 * mean, rtol=0, atol=1e-6)
    np.testing.assert_allclose(bn.running_var, 0.9 + 0.1 * var * 60 / 59, rtol=0, atol=1e-6)  # unbiased
    bn.eval()
    rm, rv = bn.running_mean.astype(np.float64), bn.running_var.astype(np.float64)
    for c in range(2):
        want[:, c] = (x[:, c] - rm[c]) / np.sqrt(rv[c] + 1e-5) * bn.weight.data[c] + bn.bias.data[c]
    np.testing.assert_allclose(bn(x), want, rtol=0, atol=1e-5)

    lin = Linear(5, 3)
    v = rs.standard_normal((2, 5)).astype(np.float32)
    naive = [[sum(v[i, k] * float(lin.weight.data[o, k]) for k in range(5)) + lin.bias.data[o] for o in range(3)]
             for i in range(2)]
    np.testing.assert_allclose(lin(v), naive, rtol=0, atol=1e-5)

    pooled = AdaptiveAvgPool2d(1)(x)
    assert pooled.shape == (3, 2, 1, 1)
    naive = [[[[sum(float(t) for t in x[i, c].ravel()) / 20]] for c in range(2)] for i in range(3)]
    np.testing.assert_allclose(pooled, naive, rtol=0, atol=1e-6)


def test_no_framework_is_imported():
    code = ("import sys, numpy as np, theseus\n"
            "from theseus_conformance.reference import ReferenceBackend, MobileNetV1\n"
            "theseus.register_backend(ReferenceBackend())\n"
            "net = MobileNetV1(scale=0.25, return_patterns=['blocks[0]']).eval()\n"
            "assert list(net(np.zeros((1, 3, 32, 32), np.float32))) == ['output', 'blocks[0]']\n"
            "print(sorted(m for m in ('torch', 'paddle', 'mindspore') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
