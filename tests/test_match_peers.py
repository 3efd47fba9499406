"""The known answers of porting between different implementations (issue: match/PortMap).

Unmodified third-party models with random init (PaddleClas, MindCV, timm) and theseus's own
MobileNetV1s; every ordered pair is matched, ported and verified under the judge. Each big
model is built once for the module. Inputs are small where the scenario allows (the max-pool
padding case needs 224/226).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from theseus_conformance import peers

if not peers.available():
    pytest.skip("the peer models are not installed (README's test command installs them)",
                allow_module_level=True)

import theseus_mindspore  # noqa: E402,F401  (MindSpore's oneDNN before paddle's)

import theseus  # noqa: E402


def _mbv1():
    import theseus_paddle
    import theseus_torch

    return {
        "ppcls": peers.ppcls_model("MobileNetV1"),
        "mindcv": peers.mindcv_model("mobilenet_v1_100"),
        "timm": peers.timm_model("mobilenetv1_100", act_layer="relu"),
        "theseus_torch": theseus_torch.MobileNetV1(seed=3).eval(),
        "theseus_paddle": theseus_paddle.MobileNetV1(seed=4),
        "theseus_mindspore": theseus_mindspore.MobileNetV1(seed=5),
    }


@pytest.fixture(scope="module")
def mbv1():
    models = _mbv1()
    models["theseus_paddle"].eval()
    models["theseus_mindspore"].set_train(False)
    return models


@pytest.fixture(scope="module")
def resnet():
    return {"ppcls": peers.ppcls_model("ResNet50"), "mindcv": peers.mindcv_model("resnet50"),
            "timm": peers.timm_model("resnet50")}


def _inputs(size, n=1, seed=0):
    rng = np.random.RandomState(seed)
    return [rng.standard_normal((1, 3, size, size)).astype(np.float32) for _ in range(n)]


MBV1 = ["ppcls", "mindcv", "timm", "theseus_torch", "theseus_paddle", "theseus_mindspore"]


@pytest.mark.parametrize("src,dst", list(itertools.permutations(MBV1, 2)))
def test_mobilenetv1_every_pair_matches_ports_and_agrees(mbv1, src, dst):
    x = _inputs(32)[0]
    pm = theseus.match(mbv1[src], mbv1[dst], x)
    n_src, n_dst = len(theseus.state(mbv1[src])), len(theseus.state(mbv1[dst]))
    # every tensor; torch's 27 num_batches_tracked only where both sides keep them
    assert len(pm) == min(n_src, n_dst) and len(pm) in (137, 164)
    assert {r.src_key for r in pm.rows} <= set(theseus.state(mbv1[src]))
    assert len({r.dst_key for r in pm.rows}) == len(pm)
    five = np.concatenate(_inputs(32, n=5, seed=1))     # logits judged on 5 seeded inputs
    report = theseus.port(mbv1[src], mbv1[dst], map=pm, example_input=five)
    assert report.ok, report.summary() + "\n" + report.message
    assert report.load.ok and report.matched == len(pm) and report.verified


@pytest.mark.parametrize("dst,expected", [
    ("mindcv", ["features[3]", "features[5]", "features[7]", "features[13]"]),
    ("timm", ["blocks[0][0]", "blocks[1][1]", "blocks[2][1]", "blocks[3][5]"]),
])
def test_mobilenetv1_translate(mbv1, dst, expected):
    pm = theseus.match(mbv1["ppcls"], mbv1[dst], _inputs(32)[0])
    got = [pm.translate(d) for d in ["blocks[0]", "blocks[2]", "blocks[4]", "blocks[10]"]]
    assert got == expected
    back = pm.inverse()
    assert [back.translate(d) for d in expected] == ["blocks[0]", "blocks[2]", "blocks[4]", "blocks[10]"]


RESNET = ["ppcls", "timm", "mindcv"]


@pytest.mark.parametrize("src,dst", list(itertools.permutations(RESNET, 2)))
def test_resnet50_every_pair(resnet, src, dst):
    # 66x66: the stem gives the max-pool an odd input (33), where MindCV's TF-'same' pool
    # and the others' padding=1 coincide.
    x = _inputs(66)[0]
    pm = theseus.match(resnet[src], resnet[dst], x)
    assert len(pm) == 267 and len({r.dst_key for r in pm.rows}) == 267
    got = [pm.translate(d) for d in ["blocks[2]", "blocks[6]", "blocks[12]", "blocks[15]"]] if src == "ppcls" else None
    if got is not None:
        assert got == ["layer1[2]", "layer2[3]", "layer3[5]", "layer4[2]"]
    report = theseus.port(resnet[src], resnet[dst], map=pm, example_input=x)
    assert report.ok, report.summary() + "\n" + report.message


@pytest.mark.parametrize("src,dst,pools", [("ppcls", "mindcv", ("max_pool", "max_pool")),
                                           ("mindcv", "timm", ("max_pool", "maxpool"))])
def test_resnet50_mindcv_maxpool_padding(resnet, src, dst, pools):
    x224, x226 = _inputs(224)[0], _inputs(226)[0]
    pm = theseus.match(resnet[src], resnet[dst], x224)
    assert len(pm) == 267
    report = theseus.port(resnet[src], resnet[dst], map=pm, example_input=x224)
    assert not report.ok
    assert report.first_difference == pools
    assert "padding convention" in report.cause and "TF 'same'" in report.cause and "112 (even)" in report.cause
    assert "DIFFERS" in report.summary()
    with pytest.raises(theseus.PortVerificationError, match="max_pool"):
        theseus.port(resnet[src], resnet[dst], map=pm, example_input=x224, raise_on_difference=True)
    report = theseus.port(resnet[src], resnet[dst], map=pm, example_input=x226)
    assert report.ok, report.summary() + "\n" + report.message


def test_inverse_round_trips_bitwise(mbv1):
    x = _inputs(32)[0]
    pm = theseus.match(mbv1["ppcls"], mbv1["timm"], x)
    assert pm.inverse().inverse() == pm
    original = theseus.state(mbv1["ppcls"])
    theseus.port(mbv1["ppcls"], mbv1["timm"], map=pm)
    fresh = peers.ppcls_model("MobileNetV1")
    theseus.port(mbv1["timm"], fresh, map=pm.inverse())
    back = theseus.state(fresh)
    assert back.keys() == original.keys()
    assert all(np.array_equal(back[k], original[k]) for k in original)


@pytest.mark.skipif(not hasattr(theseus._state, "state_layout"),
                    reason="checkpoint keys are native names: needs the per-tensor layout protocol")
@pytest.mark.parametrize("ext", [".pdparams", ".npz"])
def test_checkpoint_with_prefix_ports_to_the_same_bytes(mbv1, tmp_path, ext):
    import paddle

    src, dst = mbv1["ppcls"], mbv1["timm"]
    pm = theseus.match(src, dst, _inputs(32)[0])
    pm.save(tmp_path / "map.json")
    theseus.port(src, dst, map=pm)
    direct = theseus.state(dst)
    path = tmp_path / f"ResNet50_student{ext}"
    native = {f"backbone.{k}": v.numpy() for k, v in src.state_dict().items()}
    native["head.fc.weight"] = np.zeros((2, 2), np.float32)
    if ext == ".pdparams":
        paddle.save({k: paddle.to_tensor(v) for k, v in native.items()}, str(path))
    else:
        np.savez(path, **native)
    fresh = peers.timm_model("mobilenetv1_100", act_layer="relu")
    report = theseus.port(theseus.read_state(path), fresh, map=theseus.PortMap.load(tmp_path / "map.json"),
                          prefix="backbone.")
    assert report.load.ok and report.matched == 137
    got = theseus.state(fresh)
    assert got.keys() == direct.keys() and all(got[k].tobytes() == direct[k].tobytes() for k in direct)


def test_map_json_round_trip_and_table(mbv1, tmp_path):
    pm = theseus.match(mbv1["ppcls"], mbv1["mindcv"], _inputs(32)[0])
    pm.save(tmp_path / "map.json")
    again = theseus.PortMap.load(tmp_path / "map.json")
    assert again == pm and again.dumps() == pm.dumps()
    assert pm.inverse().inverse() == pm
    table = str(pm).splitlines()
    assert table[0].startswith("PortMap ") and "137 tensors" in table[0]
    assert len(table) == 3 + 137
    assert "blocks[10].depthwise_conv.conv" in str(pm) and "features[13][0]" in str(pm)


def test_mismatched_models_are_a_match_error_listing_candidates(mbv1, resnet):
    with pytest.raises(theseus.MatchError) as err:
        theseus.match(mbv1["ppcls"], resnet["timm"], _inputs(32)[0])
    text = str(err.value)
    assert "candidates" in text and "nothing was paired" in text
    assert err.value.unmatched["src"] and err.value.unmatched["dst"]


def test_resnet50_fix_padding_replaces_the_destination_pool(resnet):
    # last in the module: it changes the MindCV model's pool
    src, dst = resnet["ppcls"], resnet["mindcv"]
    x = _inputs(224)[0]
    pm = theseus.match(src, dst, x)
    report = theseus.port(src, dst, map=pm, example_input=x, fix_padding=True)
    assert report.ok, report.summary() + "\n" + report.message
    assert len(report.fixes) == 1 and report.fixes[0].startswith("max_pool: max_pool padding 'same'".replace("'same'", "same"))
    assert "fixed: max_pool" in report.summary()
    assert theseus.backend_of(dst).layer_info(dst.max_pool)["padding"] == (1, 1, 1, 1)
