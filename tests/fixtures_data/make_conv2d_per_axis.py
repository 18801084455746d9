"""Writes tests/golden/conv2d_per_axis.json: PyTorch conv2d with kernel, stride and padding given
per axis (quark0/darts conv_7x1_1x7's (1, 7) and (7, 1) convs), in tests/golden's format.

Usage: python3 tests/fixtures_data/make_conv2d_per_axis.py tests/golden/conv2d_per_axis.json
"""
import json
import sys

import torch
import torch.nn.functional as F

SEED = 20261202
torch.manual_seed(SEED)


def tensor(t):
    return {"shape": list(t.shape), "data": t.detach().flatten().tolist()}


# name, x shape, (C_out, C_in/groups, kH, kW), stride (H, W), padding (H, W), groups, bias
CASES = [
    ("1x7_s1_p0x3", [2, 4, 8, 8], [4, 4, 1, 7], [1, 1], [0, 3], 1, False),
    ("1x7_s1x2_p0x3", [2, 4, 8, 8], [4, 4, 1, 7], [1, 2], [0, 3], 1, False),
    ("7x1_s2x1_p3x0_bias", [2, 4, 8, 8], [4, 4, 7, 1], [2, 1], [3, 0], 1, True),
    ("7x1_s1_p3x0_odd7x7", [2, 4, 7, 7], [6, 4, 7, 1], [1, 1], [3, 0], 1, False),
    ("dw3x3_s2x1_p1x0", [2, 4, 8, 8], [4, 1, 3, 3], [2, 1], [1, 0], 4, False),
]

cases = []
for name, xs, ws, stride, padding, groups, bias in CASES:
    x = torch.randn(xs, dtype=torch.float64, requires_grad=True)
    w = torch.randn(ws, dtype=torch.float64, requires_grad=True)
    b = torch.randn(ws[0], dtype=torch.float64, requires_grad=True) if bias else None
    y = F.conv2d(x, w, b, stride=tuple(stride), padding=tuple(padding), groups=groups)
    gy = torch.randn_like(y)
    y.backward(gy)
    params = {"weight": tensor(w)}
    grads = {"x": tensor(x.grad), "weight": tensor(w.grad)}
    if bias:
        params["bias"] = tensor(b)
        grads["bias"] = tensor(b.grad)
    cases.append({
        "name": name,
        "attrs": {"stride": stride, "padding": padding, "dilation": 1, "groups": groups, "bias": bias,
                  "kernel": ws[2:]},
        "inputs": {"x": tensor(x)},
        "params": params,
        "outputs": {"y": tensor(y)},
        "upstream_grads": {"y": tensor(gy)},
        "grads": grads,
    })

doc = {
    "op": "conv2d",
    "description": "2-D cross-correlation (PyTorch conv2d) with kernel, stride and padding per axis, "
    "each attr [along H, along W]: y[n,o,i,j] = bias[o] + sum_{c,u,v} w[o,c,u,v] * "
    "x[n, g*(C_in/groups)+c, i*stride[0]-padding[0]+u, j*stride[1]-padding[1]+v], zero padding. "
    "Output size floor((H + 2*padding[0] - kH)/stride[0]) + 1 (W alike).",
    "layout": "Every tensor is {shape, data}: data is the row-major (C-order) flattening of shape. "
    "Activations are NCHW; conv weights OIHW = (out, in/groups, kH, kW). float64 throughout. "
    "'upstream_grads' holds dL/d(output) for each entry of 'outputs'; 'grads' holds dL/d(input or "
    "parameter) for L = sum over outputs of <output, upstream_grad>.",
    "dtype": "float64",
    "seed": SEED,
    "torch": torch.__version__,
    "cases": cases,
}
with open(sys.argv[1], "w") as f:
    json.dump(doc, f)
