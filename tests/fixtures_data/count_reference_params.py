"""Prints the reference's parameter count of every genotype in quark0/darts cnn/genotypes.py.

Builds cnn/model.py's NetworkCIFAR(36, 10, 20, auxiliary=True, genotype) as cnn/train.py does
and counts as cnn/utils.py's count_parameters_in_MB (parameters whose name lacks "auxiliary").
Usage: python3 count_reference_params.py DARTS_CHECKOUT/cnn  (needs torch and numpy; torchvision,
which utils.py imports for its transforms only, is stubbed out).
"""
import sys
import types

sys.path.insert(0, sys.argv[1])
tv = types.ModuleType("torchvision")
tv.transforms = types.ModuleType("torchvision.transforms")
sys.modules["torchvision"] = tv
sys.modules["torchvision.transforms"] = tv.transforms

import contextlib  # noqa: E402
import io  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import genotypes  # noqa: E402
from model import NetworkCIFAR  # noqa: E402

print("torch", torch.__version__)
for name in dir(genotypes):
    genotype = getattr(genotypes, name)
    if not isinstance(genotype, genotypes.Genotype):
        continue
    with contextlib.redirect_stdout(io.StringIO()):  # model.py prints each cell's channels
        net = NetworkCIFAR(36, 10, 20, True, genotype)
    # utils.count_parameters_in_MB's sum; its np.sum(generator) is an error in numpy 2.
    n = sum(np.prod(v.size()) for k, v in net.named_parameters() if "auxiliary" not in k)
    print(f"{name} {n} {n / 1e6}MB")
