"""Reads what `wgpu-nas export --weights` wrote with the Python tools a PyTorch user has
(tests/export.rs runs it in the virtual environment that .ci/run makes: onnxruntime,
safetensors, numpy):

    python check_export.py MODEL.onnx INPUT.f32 LOGITS.f32 N,C,H,W WEIGHTS.safetensors EXPECTED.json

onnxruntime's logits for INPUT must match LOGITS (our forward pass) to 1e-4, and the safetensors
file must hold exactly EXPECTED's names and shapes. Prints the largest difference.
"""
import json
import sys

import numpy as np
import onnxruntime
from safetensors.numpy import load_file

model, x_path, y_path, shape, weights, expected = sys.argv[1:7]
x = np.fromfile(x_path, dtype="<f4").reshape([int(d) for d in shape.split(",")])
want = np.fromfile(y_path, dtype="<f4").reshape(x.shape[0], -1)
session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
(got,) = session.run(["logits"], {"input": x})
err = float(np.abs(got - want).max())
print(f"onnxruntime {onnxruntime.__version__}: max |logits - ours| = {err:.3e}")
assert err <= 1e-4, f"onnxruntime's logits differ from ours by {err}"

tensors = load_file(weights)
names = {e["name"]: e["shape"] for e in json.load(open(expected))}
got_names = {k: list(v.shape) for k, v in tensors.items()}
assert got_names == names, f"missing {sorted(set(names) - set(got_names))}, extra {sorted(set(got_names) - set(names))}"
print(f"safetensors: {len(tensors)} tensors, names and shapes as the reference's state_dict")
