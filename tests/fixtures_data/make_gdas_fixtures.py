"""Writes tests/golden/gdas_edge.json (one GDAS edge: the Gumbel-softmax hard sample and the
straight-through sum of AutoDL-Projects' `forward_gdas`) and tests/golden/channel_shuffle.json
(PC-DARTS's `channel_shuffle`), in tests/golden's format, computed by PyTorch in float64.

Usage: python3 tests/fixtures_data/make_gdas_fixtures.py tests/golden
"""
import json
import os
import sys

import torch
import torch.nn.functional as F

SEED = 20261203
torch.manual_seed(SEED)

LAYOUT = (
    "Every tensor is {shape, data}: data is the row-major (C-order) flattening of shape. "
    "Activations are NCHW. float64 throughout. 'upstream_grads' holds dL/d(output) for each entry "
    "of 'outputs'; 'grads' holds dL/d(input or parameter) for L = sum over outputs of "
    "<output, upstream_grad>."
)


def tensor(t):
    return {"shape": list(t.shape), "data": t.detach().flatten().tolist()}


def doc(op, description, cases):
    return {"op": op, "description": description, "layout": LAYOUT, "dtype": "float64", "seed": SEED,
            "torch": torch.__version__, "cases": cases}


def gdas_case(name, edges, ops, x_shape, tau, edge, force_none=False):
    alpha = (1e-3 * torch.randn(edges, ops, dtype=torch.float64)).requires_grad_(True)
    # Gumbel(0, 1) draws, as the reference's -log(-log(U)) (it redraws infinities)
    gumbel = -torch.empty(edges, ops, dtype=torch.float64).exponential_().log()
    if force_none:
        gumbel[edge, 0] = gumbel[edge].max() + 5.0
    logits = (F.log_softmax(alpha, dim=1) + gumbel) / tau
    probs = F.softmax(logits, dim=1)
    index = probs.max(-1, keepdim=True)[1]
    one_h = torch.zeros_like(logits).scatter_(-1, index, 1.0)
    hardwts = one_h - probs.detach() + probs
    k = int(index[edge, 0])
    assert (k == 0) == force_none
    inputs = {"alpha": tensor(alpha), "gumbel": tensor(gumbel)}
    if k == 0:
        # the sampled op is `none`: its output is zero, only the other weights add (as constants)
        y = torch.zeros(x_shape, dtype=torch.float64)
    else:
        y = torch.randn(x_shape, dtype=torch.float64, requires_grad=True)
        inputs["y"] = tensor(y)
    out = sum(hardwts[edge, i] * y if i == k else hardwts[edge, i] for i in range(ops))
    gout = torch.randn_like(out)
    out.backward(gout)
    grads = {"alpha": tensor(alpha.grad)}
    if k != 0:
        grads["y"] = tensor(y.grad)
    return {
        "name": name,
        "attrs": {"tau": tau, "edge": edge, "shape": list(x_shape)},
        "inputs": inputs,
        "params": {},
        "outputs": {"out": tensor(out)},
        "extra_outputs": {"index": tensor(index[:, 0].double()), "h": tensor(hardwts)},
        "upstream_grads": {"out": tensor(gout)},
        "grads": grads,
    }


def shuffle_case(name, x_shape, groups):
    x = torch.randn(x_shape, dtype=torch.float64, requires_grad=True)
    n, c, h, w = x_shape
    y = x.view(n, groups, c // groups, h, w).transpose(1, 2).contiguous().view(n, c, h, w)
    gy = torch.randn_like(y)
    y.backward(gy)
    return {"name": name, "attrs": {"groups": groups}, "inputs": {"x": tensor(x)}, "params": {},
            "outputs": {"y": tensor(y)}, "upstream_grads": {"y": tensor(gy)}, "grads": {"x": tensor(x.grad)}}


gdas = doc(
    "gdas_edge",
    "One GDAS edge (Dong & Yang 2019; AutoDL-Projects forward_gdas). alpha [E, K], gumbel [E, K] "
    "(fixed Gumbel(0,1) draws, not differentiated), attrs tau and edge e: logits = "
    "(log_softmax(alpha, dim=1) + gumbel) / tau; p = softmax(logits, dim=1); index = argmax(p) per "
    "row; h = one_hot(index) - p.detach() + p; with k = index[e], out = h[e, k] * y + "
    "sum_{i != k} h[e, i], where y is the sampled op's output on edge e (an input; absent when k = 0, "
    "the `none` op, whose output is zero: out is then the constant sum_{i != 0} h[e, i] over "
    "attrs.shape). extra_outputs: index (as float) and h.",
    [
        gdas_case("darts_edges_tau10", 14, 8, [2, 4, 8, 8], 10.0, 3),
        gdas_case("darts_edges_tau0.5", 14, 8, [2, 4, 8, 8], 0.5, 9),
        gdas_case("nb201_edges_tau1_odd7x7", 6, 5, [2, 3, 7, 7], 1.0, 5),
        gdas_case("sampled_none_tau2", 14, 8, [2, 4, 4, 4], 2.0, 0, force_none=True),
    ],
)
shuffle = doc(
    "channel_shuffle",
    "ShuffleNet's channel shuffle as PC-DARTS channel_shuffle(x, groups): x [N, C, H, W] viewed as "
    "[N, groups, C/groups, H, W], axes 1 and 2 swapped, viewed back: y[n, j*groups + i] = "
    "x[n, i*(C/groups) + j].",
    [
        shuffle_case("groups4_c8_8x8", [2, 8, 8, 8], 4),
        shuffle_case("groups2_c12_odd7x7", [2, 12, 7, 7], 2),
        shuffle_case("groups1_copy", [2, 4, 4, 4], 1),
        shuffle_case("groups_c_c6", [2, 6, 5, 5], 6),
    ],
)
for name, d in [("gdas_edge.json", gdas), ("channel_shuffle.json", shuffle)]:
    with open(os.path.join(sys.argv[1], name), "w") as f:
        json.dump(d, f)
