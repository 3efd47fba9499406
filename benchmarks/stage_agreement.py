"""Stage agreement: theseus.features' default stages against the peers' own stage metadata.

* timm: every model that exposes ``feature_info`` (the metadata ``features_only`` uses) and
  builds on CPU in under 10 s at 224x224 with random init, compared on (channels, reduction)
  of every stage;
* PaddleClas: each legendary model's ``MODEL_STAGES_PATTERN`` (probed for channels and
  reduction);
* MindCV: every model that exposes ``feature_info``.

Writes docs/stage-agreement.md (summary, every disagreement with its reason). Slow (tens of
minutes on 2 cores): NOT run in CI; the tests check a handful of representative models.
Results are cached per model in a JSON file so an interrupted run resumes.

Regenerate:
    python benchmarks/stage_agreement.py                     # all three peers
    python benchmarks/stage_agreement.py --peers timm --limit 50
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import signal
import sys
import time
from typing import Any

import numpy as np

import theseus
from theseus import _features
from theseus._backend import ContainerKind
from theseus_conformance import peers

HERE = os.path.dirname(os.path.abspath(__file__))
DOC = os.path.join(HERE, "..", "docs", "stage-agreement.md")
BUILD_LIMIT_S = 10.0

#: Known conventions and limitations by model-name prefix (checked against the results).
CONVENTIONS = {
    "ghostnet": "peer convention: timm lists the first block of a resolution; a detector wants the last (theseus)",
    "repghostnet": "peer convention: timm lists the first block of a resolution; a detector wants the last (theseus)",
    "hrnet": "peer convention: timm's hrnet feature_info taps the classification-head (incre) modules",
    "vgg": "peer convention: timm taps the conv before each max-pool (/1 .. /16) and the pre-logits at /32",
    "inception_v4": "peer convention: timm taps features.3 (Mixed_3a, the first /4 module); theseus the last /4 "
                    "module (features.4)",
    "nasnet": "peer convention: timm taps cell outputs it names (act_stem, cell_stem_1, ...) at other resolutions",
    "pnasnet": "peer convention: timm taps cell outputs it names at other resolutions",
    "xception": "peer convention: timm taps a layer inside the next block (blocks.N.stack.act3, before its "
                "strided conv); theseus the block outputs",
    "legacy_xception": "peer convention: timm taps layers inside blocks (block1.rep.0 ...); theseus the block outputs",
    "tresnet": "peer convention: timm lists a /2 entry with an empty module name (the space-to-depth input, "
               "not a module output)",
    "regnetz_040_h": "theseus limitation: its stages are attributes s1..s4, not a container of blocks (no body); "
                     "the head conv final_conv widens 528 -> 1536 (2.9x, under the 4x that marks an appended "
                     "expansion conv) and is taken as the /32 stage; pass stages=[...]",
    "crossvit": "peer convention: timm lists every block twice, once per branch (two token sequences of "
                "different patch sizes); theseus reads one map per block (its first branch's tokens, element 0)",
    "efficientvim": "theseus limitation: the hidden-state LayerNorms norm[i] ((B, N, C) of the recurrent state, "
                    "not a grid of the image) read as token maps and end the stages early; pass "
                    "stages=['stages[0]', 'stages[1]', 'stages[2]'] (tuple outputs, element 0 is the map)",
}

#: timm module names that are head convs (after the last block of the body)
_HEAD_CONVS = ("final_conv", "conv_head", "conv2d_7b", "head.", "conv_final", "head_conv")


def _last_per_reduction(stages: list) -> list:
    return [s for i, s in enumerate(stages) if i + 1 == len(stages) or stages[i + 1][1] != s[1]]


def _detector_levels(stages: list) -> list:
    """(channels, reduction) of the entries at /4, /8, /16 and /32, in order."""
    return [tuple(s[:2]) for s in stages if s[1] in (4, 8, 16, 32)]


class _Timeout(Exception):
    pass


def _alarm(seconds: float):
    def handler(signum, frame):
        raise _Timeout()

    signal.signal(signal.SIGPROF, handler)
    signal.setitimer(signal.ITIMER_PROF, seconds)   # CPU seconds of this process


# -- the probe record: what the stage rule reads, so the rule can be re-run without the model --

def _record(model: Any, size: int) -> dict:
    """One probe forward (theseus's own) and the module tree: ``{"kinds", "children", "ran"}``.

    ``kinds[i]``/``children[i]`` describe layer ``i`` (0 is the root; a shared layer once);
    ``ran[i] = [completion order, output shape]``. ``_replay`` runs theseus's stage rule on it.
    """
    backend = theseus.backend_of(model)
    ran = _features._probe_all(backend, model, (1, 3, size, size))
    index = {id(model): 0}
    layers, kinds, children = [model], [], []
    i = 0
    while i < len(layers):
        kids = []
        for name, child in backend.children(layers[i]):
            if id(child) not in index:
                index[id(child)] = len(layers)
                layers.append(child)
            kids.append([name, index[id(child)]])
        kinds.append(backend.container_kind(layers[i]).name)
        children.append(kids)
        i += 1
    return {"kinds": kinds, "children": children, "size": size, "types": [type(x).__name__ for x in layers],
            "ran": {str(index[k]): [o, _shape_json(s)] for k, (o, s) in ran.items() if k in index}}


def _shape_json(s: Any) -> Any:
    """A probed shape for the record: a list, None, or ``{"parts": [...]}`` for a tuple output."""
    if isinstance(s, _features._Parts):
        return {"parts": [list(p) if p is not None else None for p in s]}
    return list(s) if s is not None else None


def _shape_read(s: Any) -> Any:
    if isinstance(s, dict):
        return _features._Parts(tuple(p) if p is not None else None for p in s["parts"])
    return tuple(s) if s is not None else None


class _Layer:
    __slots__ = ("i",)

    def __init__(self, i: int) -> None:
        self.i = i


class _ReplayBackend:
    """A recorded module tree read the way the stage rule reads a model (children, kinds)."""

    def __init__(self, tree: dict) -> None:
        kinds: dict = {}  # one class per recorded layer type (the rule compares layers' types)
        self.layers = [kinds.setdefault(t, type(t, (_Layer,), {"__slots__": ()}))(i)
                       for i, t in enumerate(tree["types"])]
        self.kinds = [ContainerKind[k] for k in tree["kinds"]]
        self.kids = tree["children"]

    def children(self, layer: _Layer) -> list:
        return [(name, self.layers[j]) for name, j in self.kids[layer.i]]

    def container_kind(self, layer: _Layer) -> ContainerKind:
        return self.kinds[layer.i]


def _replay(tree: dict) -> list:
    """theseus's default stages on a recorded probe: ``[[channels, reduction, name], ...]``."""
    rb = _ReplayBackend(tree)
    ran = {id(rb.layers[int(i)]): (o, _shape_read(s)) for i, (o, s) in tree["ran"].items()}
    hw = (tree["size"], tree["size"])
    stages, _ = _features._detect_from(rb, rb.layers[0], ran, hw)
    return [[s.map.channels, s.map.reduction(hw), s.node.text] for s in stages]


def _ours(entry: dict) -> tuple:
    """(stages, error) of theseus's rule on an entry's recorded probe."""
    tree = entry.get("tree")
    if tree is None:
        return [], entry.get("error", "")
    try:
        stages = _replay(tree)
    except theseus.TheseusError as e:
        return [], f"{type(e).__name__}: {str(e)[:160]}"
    if not stages:
        return [], "LayerNotFoundError: features: no stage found"
    return stages, ""


def _status(entry: dict) -> str:
    if entry["status"] != "compared":
        return entry["status"]
    if "tree" not in entry and "the probe forward on zeros" in entry.get("error", ""):
        return "excluded: the model's own forward fails on CPU (" + entry["error"].split("failed (")[-1][:60] + ")"
    ours, err = _ours(entry)
    if not entry.get("theirs"):
        return "no peer metadata (theseus finds stages)" if ours else "no peer metadata, theseus finds no stage"
    return "agree" if [x[:2] for x in ours] == [x[:2] for x in entry["theirs"]] else "disagree"


def _reason(model: str, ours: list, theirs: list) -> str:
    """Why two stage lists differ: known family conventions, else the differences explained
    one by one (a stem tap, a head conv, several modules per resolution)."""
    for prefix, why in CONVENTIONS.items():
        if model.startswith(prefix):
            return why
    o, t = list(ours), list(theirs)
    notes = []
    if t and t[0][1] <= 2 and "." in t[0][2] and not (o and o[0][1] == t[0][1]):
        notes.append(f"the peer taps {t[0][2]} inside the stem at /{t[0][1]}; theseus lists no layer inside a stem "
                     "container (stages follow the module tree: opening stems measured at 74 models gained, 111 "
                     "lost, timm's /2 tap is per family; detectors take /4../32, where the lists agree)")
        t = t[1:]
    if o and o[0][1] <= 2 and not (t and t[0][1] == o[0][1]):
        notes.append(f"the peer lists no stage for the top-level /{o[0][1]} stem output {o[0][2]} (timm does for "
                     "ResNet's act1); a detector uses theseus's out_indices from 1")
        o = o[1:]
    extra = [x for x in o if t and x[1] < t[0][1]]
    if extra and [x[:2] for x in o[len(extra):]] == [x[:2] for x in t]:
        notes.append(f"the peer's first stage is at /{t[0][1]}; theseus also lists "
                     + ", ".join(f"{x[2]} (/{x[1]})" for x in extra))
        o = o[len(extra):]
    if (t and o and t[-1][1] == o[-1][1] and t[-1][0] != o[-1][0]
            and any(h in t[-1][2] for h in _HEAD_CONVS)):
        notes.append(f"the peer taps the head conv {t[-1][2]} ({t[-1][0]} ch) at /{t[-1][1]}; theseus the last body "
                     f"block {o[-1][2]} ({o[-1][0]} ch): not a head/expansion conv (issue 12)")
        t, o = t[:-1], o[:-1]
    last = _last_per_reduction(t)
    if len(last) < len(t) and [x[:2] for x in last] == [x[:2] for x in o]:
        notes.append("the peer lists several modules at one resolution; theseus the last of each, which a detector "
                     "wants")
        t = last
    if len(o) == len(t) + 1 and [x[:2] for x in o[:-1]] == [x[:2] for x in t]:
        notes.append(f"the peer lists no stage at /{o[-1][1]} (its pattern stops at /{t[-1][1]}); theseus's last "
                     f"stage {o[-1][2]} is the body's end")
        o = o[:-1]
    if [x[:2] for x in o] == [x[:2] for x in t]:
        return "peer convention: " + "; ".join(notes)
    if [x[1] for x in o] == [x[1] for x in t]:
        i = next(i for i, (a, b) in enumerate(zip(o, t)) if a[:2] != b[:2])
        why = (f"channels differ at /{t[i][1]}: theseus {o[i][2]} ({o[i][0]}) vs peer {t[i][2]} ({t[i][0]}), "
               "another layer of that resolution")
    else:
        why = "different stage sets (see both lists)"
    return "; ".join(notes + [why])


#: name parts of models far over the build limit, skipped without building (listed in the doc)
_HUGE = ("giant", "gigantic", "huge", "xxlarge", "1b", "2b", "3b", "5b", "6b", "7b", "g14")


def _timm_models(limit: int, per_family: bool) -> list:
    import random

    import timm

    names = timm.list_models()
    if per_family:  # one model per timm model module (architecture family): the shortest name
        picked = []
        for module in timm.list_modules():
            ms = [n for n in timm.list_models(module=module) if n in set(names)]
            if ms:
                picked.append(min(ms, key=lambda n: (len(n), n)))
        names = sorted(picked)
    else:  # a fixed shuffle: an unfinished run is a uniform sample, not the first families
        random.Random(12).shuffle(names)
    return names[:limit] if limit else names


def _load(path: str) -> dict:
    out: dict = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                if line.strip():
                    e = json.loads(line)
                    out[f"{e['peer']}:{e['model']}"] = e
    return out


def _save(path: str, entry: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(entry) + "\n")
    print(f"{entry['peer']:>10} {entry['model']:<45} {_status(entry)}", flush=True)


def _selected(name: str, models: tuple) -> bool:
    return not models or name.startswith(models)


def run_timm(cache: dict, path: str, limit: int, per_family: bool = False, budget_s: float = 0,
             models: tuple = ()) -> None:
    peers.install()
    import timm
    import torch

    torch.set_num_threads(1)
    t0 = time.time()
    for name in _timm_models(limit, per_family):
        if not _selected(name, models):
            continue
        if budget_s and time.time() - t0 > budget_s:
            print(f"time budget {budget_s:.0f} s reached", flush=True)
            return
        key = f"timm:{name}"
        if key in cache and not models:
            continue
        entry: dict = {"peer": "timm", "model": name, "family": name.split("_")[0]}
        if any(t in name.split("_") for t in _HUGE):
            entry["status"] = f"excluded: build over {BUILD_LIMIT_S:.0f} CPU s (giant/huge model, not built)"
        else:
            _run_timm_one(timm, name, entry)
        cache[key] = entry
        _save(path, entry)
        gc.collect()


def _run_timm_one(timm, name: str, entry: dict) -> None:
    try:
        _alarm(BUILD_LIMIT_S)
        t = time.process_time()
        model = timm.create_model(name, pretrained=False).eval()
        signal.setitimer(signal.ITIMER_PROF, 0)
        entry["build_cpu_s"] = round(time.process_time() - t, 2)
        fi = getattr(model, "feature_info", None)
        if not fi:
            entry["status"] = "excluded: no feature_info (no features_only)"
            return
        entry["theirs"] = [[int(f["num_chs"]), int(f["reduction"]), str(f["module"])] for f in fi]
        _alarm(120)
        try:
            entry["tree"] = _record(model, 224)
        except theseus.TheseusError:  # a model with a fixed input size: probe at its own size
            size = int((getattr(model, "pretrained_cfg", None) or {}).get("input_size", (3, 224, 224))[-1])
            if size == 224:
                raise
            entry["tree"] = _record(model, size)
        entry["status"] = "compared"
    except _Timeout:
        entry["status"] = f"excluded: build over {BUILD_LIMIT_S:.0f} CPU s" if "build_cpu_s" not in entry \
            else "excluded: probe forward over 120 CPU s"
        entry.pop("theirs", None)
    except theseus.TheseusError as e:
        entry["status"] = "compared"
        entry["error"] = f"{type(e).__name__}: {str(e)[:160]}"
    except Exception as e:  # the peer failed to build or run at 224 on CPU: not a theseus result
        entry["status"] = f"excluded: peer failed ({type(e).__name__}: {str(e)[:80]})"
        entry.pop("theirs", None)
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)


def run_ppcls(cache: dict, path: str) -> None:
    peers.install()
    import importlib
    import pkgutil

    import ppcls.arch.backbone.legendary_models as legendary

    for m in pkgutil.iter_modules(legendary.__path__):
        mod = importlib.import_module(f"{legendary.__name__}.{m.name}")
        patterns = getattr(mod, "MODEL_STAGES_PATTERN", {})
        for fn_name in getattr(mod, "__all__", []):
            arch = next((k for k in sorted(patterns, key=len, reverse=True) if fn_name.startswith(k)), None)
            if arch is None or fn_name.endswith(("_dbb",)):
                continue
            key = f"paddleclas:{fn_name}"
            if key in cache:
                continue
            entry: dict = {"peer": "paddleclas", "model": fn_name, "family": arch.lower()}
            try:
                _alarm(60)
                net = getattr(mod, fn_name)(pretrained=False)
                net.eval()
                shapes = _probe_shapes(net, patterns[arch])
                if any(s is None or len(s) != 4 for s in shapes):
                    raise ValueError(f"a stage pattern's output is not a (B, C, H, W) tensor: {shapes}")
                entry["theirs"] = [[s[1], _features._as_map(tuple(s), (224, 224)).reduction((224, 224)), p]
                                   for p, s in zip(patterns[arch], shapes)]
                entry["tree"] = _record(net, 224)
                entry["status"] = "compared"
            except _Timeout:
                entry["status"] = "excluded: build or probe over 60 CPU s"
            except theseus.TheseusError as e:
                entry.update(status="compared", error=f"{type(e).__name__}: {str(e)[:160]}")
            except Exception as e:
                entry["status"] = f"excluded: peer failed ({type(e).__name__}: {str(e)[:80]})"
            finally:
                signal.setitimer(signal.ITIMER_PROF, 0)
            cache[key] = entry
            _save(path, entry)
            gc.collect()


def _probe_shapes(net: Any, patterns: list) -> list:
    backend = theseus.backend_of(net)
    layers = theseus.resolve(net, patterns)
    shapes: dict = {}
    def hook(d):  # returns None: a post-hook's return value replaces the layer's output in Paddle
        def record(m, i, o):
            shapes.setdefault(d, backend.shape(o))
        return record

    hs = [backend.add_forward_hook(layer, hook(d)) for d, layer in layers.items()]
    try:
        backend.infer(net, backend.from_numpy(np.zeros((1, 3, 224, 224), np.float32)))
    finally:
        for h in hs:
            h.remove()
    return [shapes[d] for d in layers]


def run_mindcv(cache: dict, path: str, limit: int, per_family: bool = False, models: tuple = ()) -> None:
    peers.install()
    import mindcv

    from mindcv.models import registry

    # models of the modules that define feature_info first (the comparison), then the others
    # (theseus must still find stages on them)
    with_info = {m for m in registry.list_modules()
                 if "feature_info" in open(sys.modules[f"mindcv.models.{m}"].__file__).read()}
    names = sorted(mindcv.list_models(), key=lambda n: (registry._model_to_module.get(n) not in with_info, n))
    if per_family:  # one model per family (name up to the first "_" or digit run): the shortest
        fams: dict = {}
        for n in names:
            fams.setdefault(n.split("_")[0].rstrip("0123456789"), []).append(n)
        names = sorted(min(v, key=lambda n: (len(n), n)) for v in fams.values())
    for name in names[:limit] if limit else names:
        key = f"mindcv:{name}"
        if models:
            if not _selected(name, models):
                continue
        elif key in cache and "tree" in cache[key] or key in cache and not cache[key].get("error", "").startswith(
                "InvalidArgumentError"):
            continue
        entry: dict = {"peer": "mindcv", "model": name, "family": name.split("_")[0]}
        try:
            _alarm(BUILD_LIMIT_S)
            net = mindcv.create_model(name, pretrained=False)
            signal.setitimer(signal.ITIMER_PROF, 0)
            net.set_train(False)
            fi = getattr(net, "feature_info", None)
            if fi:
                entry["theirs"] = [[int(f["chs"]), int(f["reduction"]), str(f["name"])] for f in fi]
            _alarm(120)
            try:
                entry["tree"] = _record(net, 224)
            except theseus.TheseusError:  # a model with a fixed input size: probe at its own size
                size = int((registry.get_pretrained_cfg(name) or {}).get("input_size", (3, 224, 224))[-1])
                if size == 224:
                    raise
                entry["tree"] = _record(net, size)
            entry["status"] = "compared"
        except _Timeout:
            entry["status"] = f"excluded: build or probe over {BUILD_LIMIT_S:.0f} CPU s"
        except theseus.TheseusError as e:
            entry.update(status="compared", error=f"{type(e).__name__}: {str(e)[:160]}")
        except Exception as e:
            entry["status"] = f"excluded: peer failed ({type(e).__name__}: {str(e)[:80]})"
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
        cache[key] = entry
        _save(path, entry)
        gc.collect()


def _fmt(stages: list) -> str:
    return " ".join(f"{c}/{r}" for c, r, _ in stages) or "-"


def write_doc(cache: dict, command: str, todo: dict | None = None) -> str:
    lines = ["# Stage agreement with the peers", "",
             "Generated by `benchmarks/stage_agreement.py` (not run in CI: hours on 2 cores). Regenerate with:", "",
             f"    {command}", "",
             "The per-model records (the peer's metadata and theseus's probe: module tree and output shapes) are "
             "cached in `benchmarks/.stage_agreement/<peer>.jsonl`; an interrupted run resumes, and "
             "`--write-only` re-runs theseus's stage rule (`theseus._features._detect_from`, the code "
             "`theseus.features` runs) on the records without building any model. The records are git-ignored "
             "(tens of MB); the command rebuilds them. timm models are run in a fixed shuffled order (an "
             "unfinished run is a uniform sample); a model is excluded when building it takes over 10 CPU s "
             "(ITIMER_PROF) or its probe over 120 CPU s, and models whose name parts say giant/gigantic/huge/"
             "xxlarge/1b+ are counted as over the build limit without being built. Models with a fixed input "
             "size are probed at that size.", "",
             "How agreement is judged: the ordered list of (channels, reduction) of theseus's default stages "
             "(`theseus.features(model)`, probe 224x224 zeros, random init) must equal the peer's list exactly: "
             "same number of stages, same channels, same reductions (module names are not compared; they are "
             "shown). For isotropic ViT-like models timm lists every block, and so does theseus (rule 3), so "
             "a ViT agrees only when all 12 (24, 32...) blocks match. The rule theseus follows is in "
             "`theseus/_features.py` and README \"Stage conventions\". Each disagreement names its reason: a "
             "theseus limitation, or the peer's convention with the tap a detector wants.", "",
             "Stem variants measured on these records (`--write-only`, timm): (a) open every stem container "
             "for its last /2 layer (timm's taps inside ResNet-D/NFNet/CSP/VoVNet/ByobNet stems): 74 models "
             "gained, 111 lost (ConvNeXt-ols, EfficientFormer, LeViT, FastViT, VOLO, MambaOut, HGNet... where "
             "timm lists no /2 stage): 78.6 %; (b) the stem's final output is never a stage, its inner "
             "resolutions are: 71.1 % (timm lists CoAtNet's and MaxViT's /2 stem output), PaddleClas 46.8 %, "
             "MindCV 40.0 %. timm's /2 convention is per family; theseus keeps the rule that follows the module "
             "tree (a stem container is one block, a top-level /2 layer is a block), which measures highest.", "",
             "PaddleClas: the peer's stages are each legendary model's `MODEL_STAGES_PATTERN` (what its "
             "`return_patterns`/`update_res` uses), probed for channels and reduction. MindCV: the model's "
             "`feature_info` (only some MindCV families define it); the others are listed with the stages "
             "theseus finds on them.", ""]
    for peer in ("timm", "paddleclas", "mindcv"):
        rows = [e for e in cache.values() if e["peer"] == peer]
        if not rows:
            continue
        st = {id(e): _status(e) for e in rows}
        compared = [e for e in rows if st[id(e)] in ("agree", "disagree")]
        agree = [e for e in compared if st[id(e)] == "agree"]
        excluded = [e for e in rows if st[id(e)].startswith("excluded")]
        other = [e for e in rows if e not in compared and e not in excluded]
        pct = 100.0 * len(agree) / len(compared) if compared else 0.0
        lines += [f"## {peer}", ""]
        if todo and todo.get(peer):
            lines += [f"**Partial run:** {len(rows)} of {len(rows) + todo[peer]} models run; {todo[peer]} not run yet "
                      "(the command above resumes).", ""]
        loose = [e for e in compared if [x[:2] for x in _last_per_reduction(_ours(e)[0])]
                 == [x[:2] for x in _last_per_reduction(e["theirs"])]]
        lpct = 100.0 * len(loose) / len(compared) if compared else 0.0
        levels = [e for e in compared if _detector_levels(_ours(e)[0]) and _detector_levels(_ours(e)[0])
                  == _detector_levels(e["theirs"])]
        dpct = 100.0 * len(levels) / len(compared) if compared else 0.0
        lines += [f"Target (issue 12): >= 90 % agree. This run: {pct:.1f} % ({'met' if pct >= 90 else 'NOT met'}).", "",
                  f"Secondary figure (not the target's measure): when both lists are reduced to the last entry of "
                  f"each resolution (a peer that lists every block of a stage, a ViT's 12 blocks), "
                  f"{len(loose)} of {len(compared)} agree ({lpct:.1f} %).", "",
                  f"Secondary figure (not the target's measure): on the levels a detector's neck takes, /4 to /32 "
                  f"(both lists cut to their entries at reductions 4, 8, 16 and 32; the /2 stem convention and /64 "
                  f"extras left out), {len(levels)} of {len(compared)} agree ({dpct:.1f} %).", "",
                  f"Compared: {len(compared)} models; agree: {len(agree)} ({pct:.1f} %); "
                  f"excluded: {len(excluded)} (no metadata, over the build limit, or the peer failed on CPU)"
                  + (f"; without peer metadata: {len(other)}" if other else "") + ".", ""]
        dis = sorted((e for e in compared if st[id(e)] == "disagree"), key=lambda e: e["model"])
        if dis:
            lines += ["| model | theseus (ch/red) | peer (ch/red) | reason |", "|---|---|---|---|"]
            for e in dis:
                ours, err = _ours(e)
                why = err or _reason(e["model"], ours, e["theirs"])
                lines.append(f"| {e['model']} | {_fmt(ours)} | {_fmt(e['theirs'])} | {why} |".replace("\n", " "))
            lines.append("")
        if other:
            lines += ["Without peer metadata (theseus's stages): " + ", ".join(
                f"{e['model']} ({_fmt(_ours(e)[0])})" for e in sorted(other, key=lambda e: e["model"])), ""]
        by_reason: dict = {}
        for e in excluded:
            by_reason.setdefault(st[id(e)].split(" (")[0], []).append(e["model"])
        for why, models in sorted(by_reason.items()):
            lines += [f"Excluded ({why}): {len(models)}: " + ", ".join(sorted(models)) + ".", ""]
    text = "\n".join(lines)
    os.makedirs(os.path.dirname(DOC), exist_ok=True)
    with open(DOC, "w") as f:
        f.write(text)
    return text


def _todo(cache: dict, peers_: list, limit: int, per_family: bool) -> dict:
    out = {}
    if "mindcv" in peers_:
        peers.install()
        import mindcv

        out["mindcv"] = sum(f"mindcv:{n}" not in cache for n in mindcv.list_models())
    if "timm" in peers_:
        peers.install()
        out["timm"] = sum(f"timm:{n}" not in cache for n in _timm_models(limit, per_family))
    return out


def main(argv: list | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peers", default="timm,paddleclas,mindcv")
    ap.add_argument("--limit", type=int, default=0, help="first N models per peer (0: all)")
    ap.add_argument("--cache", default=os.path.join(HERE, ".stage_agreement"),
                    help="directory of per-model records, one <peer>.jsonl each (git-ignored)")
    ap.add_argument("--per-family", action="store_true",
                    help="timm: one model per model module (the shortest name) instead of every model")
    ap.add_argument("--budget", type=float, default=0, help="timm: stop starting models after this many seconds")
    ap.add_argument("--write-only", action="store_true", help="rewrite the doc from the records (no model built)")
    ap.add_argument("--models", default="",
                    help="timm, mindcv: comma-separated model-name prefixes to probe again (their records are replaced), "
                         "e.g. after a change to what the probe records")
    args = ap.parse_args(argv)
    os.makedirs(args.cache, exist_ok=True)
    files = {p: os.path.join(args.cache, f"{p}.jsonl") for p in ("timm", "paddleclas", "mindcv")}
    cache: dict = {}
    for f in files.values():
        cache.update(_load(f))
    wanted = args.peers.split(",")
    if not args.write_only:
        # mindspore before paddle (oneDNN), torch any time
        if "mindcv" in wanted:
            run_mindcv(cache, files["mindcv"], args.limit, args.per_family,
                       tuple(m for m in args.models.split(",") if m))
        if "paddleclas" in wanted:
            run_ppcls(cache, files["paddleclas"])
        if "timm" in wanted:
            run_timm(cache, files["timm"], args.limit, args.per_family, args.budget,
                     tuple(m for m in args.models.split(",") if m))
    cmd = ("python benchmarks/stage_agreement.py" + (" --per-family" if args.per_family else "")
           + (f" --limit {args.limit}" if args.limit else ""))
    text = write_doc(cache, cmd, _todo(cache, wanted, args.limit, args.per_family))
    print(text.split("## ", 1)[-1][:2000])
    return 0


if __name__ == "__main__":
    sys.exit(main())
