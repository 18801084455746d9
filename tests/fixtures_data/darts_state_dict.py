"""The state_dict keys and shapes of quark0/darts NetworkCIFAR, without torch.

A transcription of the module tree that `cnn/model.py` (Cell, AuxiliaryHeadCIFAR, NetworkCIFAR)
and `cnn/operations.py` (OPS, ReLUConvBN, DilConv, SepConv, FactorizedReduce) build, in the order
PyTorch registers the modules, with the shapes of their parameters and buffers (BatchNorm2d:
weight, bias, running_mean, running_var, num_batches_tracked). The stem's input channels are a
parameter (the reference hard-codes 3 for CIFAR).

    python3 darts_state_dict.py GENOTYPE_FILE C CLASSES LAYERS AUXILIARY IN_CHANNELS > out.json

wrote darts_state_dict_tiny.json from genotype_export.py, C=2, 10 classes, 3 layers, auxiliary 1,
1 input channel (the embedded Fashion-MNIST set).
"""
import json
import re
import sys


def bn(prefix, c):
    return [(f"{prefix}.weight", [c]), (f"{prefix}.bias", [c]), (f"{prefix}.running_mean", [c]),
            (f"{prefix}.running_var", [c]), (f"{prefix}.num_batches_tracked", [])]


def relu_conv_bn(prefix, c_in, c_out):  # ReLU, Conv2d(k=1), BatchNorm2d
    return [(f"{prefix}.op.1.weight", [c_out, c_in, 1, 1])] + bn(f"{prefix}.op.2", c_out)


def factorized_reduce(prefix, c_in, c_out):  # conv_1, conv_2 (1x1, stride 2), bn
    return [(f"{prefix}.conv_1.weight", [c_out // 2, c_in, 1, 1]),
            (f"{prefix}.conv_2.weight", [c_out // 2, c_in, 1, 1])] + bn(f"{prefix}.bn", c_out)


def sep_conv(prefix, c, k):  # ReLU, dw, pw, BN, ReLU, dw, pw, BN
    return ([(f"{prefix}.op.1.weight", [c, 1, k, k]), (f"{prefix}.op.2.weight", [c, c, 1, 1])] + bn(f"{prefix}.op.3", c)
            + [(f"{prefix}.op.5.weight", [c, 1, k, k]), (f"{prefix}.op.6.weight", [c, c, 1, 1])] + bn(f"{prefix}.op.7", c))


def dil_conv(prefix, c, k):  # ReLU, dw (dilated), pw, BN
    return [(f"{prefix}.op.1.weight", [c, 1, k, k]), (f"{prefix}.op.2.weight", [c, c, 1, 1])] + bn(f"{prefix}.op.3", c)


def op(prefix, name, c, stride):
    if name in ("avg_pool_3x3", "max_pool_3x3", "none"):
        return []
    if name == "skip_connect":
        return [] if stride == 1 else factorized_reduce(prefix, c, c)
    if name.startswith("sep_conv_"):
        return sep_conv(prefix, c, int(name[-1]))
    if name.startswith("dil_conv_"):
        return dil_conv(prefix, c, int(name[-1]))
    if name == "conv_7x1_1x7":
        return [(f"{prefix}.1.weight", [c, c, 1, 7]), (f"{prefix}.2.weight", [c, c, 7, 1])] + bn(f"{prefix}.3", c)
    raise ValueError(name)


def network(genotype, c, classes, layers, auxiliary, in_channels):
    out = []
    c_curr = 3 * c
    out += [("stem.0.weight", [c_curr, in_channels, 3, 3])] + bn("stem.1", c_curr)
    c_pp, c_p, c_curr = c_curr, c_curr, c
    reduction_prev = False
    for i in range(layers):
        reduction = i in (layers // 3, 2 * layers // 3)
        if reduction:
            c_curr *= 2
        p = f"cells.{i}"
        out += factorized_reduce(f"{p}.preprocess0", c_pp, c_curr) if reduction_prev else relu_conv_bn(f"{p}.preprocess0", c_pp, c_curr)
        out += relu_conv_bn(f"{p}.preprocess1", c_p, c_curr)
        ops, concat = (genotype["reduce"], genotype["reduce_concat"]) if reduction else (genotype["normal"], genotype["normal_concat"])
        for k, (name, index) in enumerate(ops):
            out += op(f"{p}._ops.{k}", name, c_curr, 2 if reduction and index < 2 else 1)
        reduction_prev = reduction
        c_pp, c_p = c_p, len(concat) * c_curr
        if i == 2 * layers // 3:
            c_aux = c_p
    if auxiliary:
        out += [("auxiliary_head.features.2.weight", [128, c_aux, 1, 1])] + bn("auxiliary_head.features.3", 128)
        out += [("auxiliary_head.features.5.weight", [768, 128, 2, 2])] + bn("auxiliary_head.features.6", 768)
        out += [("auxiliary_head.classifier.weight", [classes, 768]), ("auxiliary_head.classifier.bias", [classes])]
    out += [("classifier.weight", [classes, c_p]), ("classifier.bias", [classes])]
    return out


def parse(text):
    cell = lambda key: [(n, int(i)) for n, i in re.findall(r"\('(\w+)',\s*(\d+)\)", re.search(key + r"=\[(.*?)\]", text).group(1))]
    concat = lambda key: [int(x) for x in re.search(key + r"=[\[(](.*?)[\])]", text).group(1).split(",")]
    return {"normal": cell("normal"), "normal_concat": concat("normal_concat"),
            "reduce": cell("reduce"), "reduce_concat": concat("reduce_concat")}


if __name__ == "__main__":
    g = parse(open(sys.argv[1]).read())
    c, classes, layers, aux, cin = (int(x) for x in sys.argv[2:7])
    print(json.dumps([{"name": n, "shape": s} for n, s in network(g, c, classes, layers, bool(aux), cin)], indent=1))
