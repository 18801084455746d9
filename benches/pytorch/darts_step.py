"""The DARTS search step in PyTorch on the CPU, for comparison with `wgpu-nas bench darts`.

The network, losses and optimisers of quark0/darts (`model_search.py`, `architect.py`,
`train_search.py`): the 8 primitives, affine-free BN, the pools followed by BN, 4 nodes per cell,
reductions at 1/3 and 2/3 of the cells, Adam (3e-4, betas 0.5/0.999, wd 1e-3) on the alphas,
SGD (0.025, momentum 0.9, wd 3e-4, clip 5) on the weights. A step is the architecture half
(first order: the validation loss's backward, which computes the weights' gradients too, as the
reference does; second order: the unrolled gradient with the finite-difference Hessian-vector
product) then the weight half, on synthetic data.

    python3 benches/pytorch/darts_step.py --order 1 --threads 2 --warmup 1 --steps 5

prints one JSON line: median/min/max seconds per step and the two halves.
"""

import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

PRIMITIVES = ["none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
              "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"]


def relu_conv_bn(c_in, c_out, k, stride, pad):
    return nn.Sequential(nn.ReLU(inplace=False), nn.Conv2d(c_in, c_out, k, stride, pad, bias=False),
                         nn.BatchNorm2d(c_out, affine=False))


def dil_conv(c, k, stride, pad, dil):
    return nn.Sequential(nn.ReLU(inplace=False),
                         nn.Conv2d(c, c, k, stride, pad, dilation=dil, groups=c, bias=False),
                         nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c, affine=False))


def sep_conv(c, k, stride, pad):
    return nn.Sequential(dil_conv(c, k, stride, pad, 1), dil_conv(c, k, 1, pad, 1))


class Zero(nn.Module):
    def __init__(self, stride):
        super().__init__()
        self.stride = stride

    def forward(self, x):
        return x.mul(0.0) if self.stride == 1 else x[:, :, ::self.stride, ::self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=False)

    def forward(self, x):
        x = F.relu(x)
        return self.bn(torch.cat([self.conv1(x), self.conv2(x[:, :, 1:, 1:])], dim=1))


def make_op(name, c, stride):
    if name == "none":
        return Zero(stride)
    if name == "max_pool_3x3":
        return nn.Sequential(nn.MaxPool2d(3, stride, 1), nn.BatchNorm2d(c, affine=False))
    if name == "avg_pool_3x3":
        return nn.Sequential(nn.AvgPool2d(3, stride, 1, count_include_pad=False), nn.BatchNorm2d(c, affine=False))
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(c, c)
    k = int(name[-1])
    if name.startswith("sep_conv"):
        return sep_conv(c, k, stride, k // 2)
    return dil_conv(c, k, stride, k - 1, 2)


class MixedOp(nn.Module):
    def __init__(self, c, stride):
        super().__init__()
        self.ops = nn.ModuleList(make_op(p, c, stride) for p in PRIMITIVES)

    def forward(self, x, weights):
        return sum(w * op(x) for w, op in zip(weights, self.ops))


class Cell(nn.Module):
    def __init__(self, c_pp, c_p, c, reduction, reduction_prev, steps=4):
        super().__init__()
        self.reduction = reduction
        self.pre0 = FactorizedReduce(c_pp, c) if reduction_prev else relu_conv_bn(c_pp, c, 1, 1, 0)
        self.pre1 = relu_conv_bn(c_p, c, 1, 1, 0)
        self.steps = steps
        self.ops = nn.ModuleList(MixedOp(c, 2 if reduction and j < 2 else 1)
                                 for i in range(steps) for j in range(2 + i))

    def forward(self, s0, s1, weights):
        states = [self.pre0(s0), self.pre1(s1)]
        offset = 0
        for _ in range(self.steps):
            s = sum(self.ops[offset + j](h, weights[offset + j]) for j, h in enumerate(states))
            offset += len(states)
            states.append(s)
        return torch.cat(states[-4:], dim=1)


class Network(nn.Module):
    def __init__(self, c, classes, layers, in_channels):
        super().__init__()
        c_curr = 3 * c
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr))
        c_pp, c_p, c_curr = c_curr, c_curr, c
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c_curr *= 2
            self.cells.append(Cell(c_pp, c_p, c_curr, reduction, reduction_prev))
            reduction_prev = reduction
            c_pp, c_p = c_p, 4 * c_curr
        self.classifier = nn.Linear(c_p, classes)
        k = 14
        self.alphas_normal = nn.Parameter(1e-3 * torch.randn(k, len(PRIMITIVES)))
        self.alphas_reduce = nn.Parameter(1e-3 * torch.randn(k, len(PRIMITIVES)))

    def weights(self):
        return [p for n, p in self.named_parameters() if not n.startswith("alphas")]

    def arch_parameters(self):
        return [self.alphas_normal, self.alphas_reduce]

    def forward(self, x):
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            w = F.softmax(self.alphas_reduce if cell.reduction else self.alphas_normal, dim=-1)
            s0, s1 = s1, cell(s0, s1, w)
        return self.classifier(F.adaptive_avg_pool2d(s1, 1).flatten(1))

    def loss(self, x, y):
        return F.cross_entropy(self(x), y)


def unrolled_alpha_grads(net, w_opt, eta, xt, yt, xv, yv, r=0.01):
    """architect.py's _backward_step_unrolled, with the unrolled weights written in place."""
    weights = net.weights()
    backup = [w.detach().clone() for w in weights]
    momentum, wd = w_opt.param_groups[0]["momentum"], w_opt.param_groups[0]["weight_decay"]
    g = torch.autograd.grad(net.loss(xt, yt), weights)
    with torch.no_grad():
        for w, gw in zip(weights, g):
            buf = w_opt.state[w].get("momentum_buffer") if w in w_opt.state else None
            moment = momentum * buf if buf is not None else torch.zeros_like(w)
            w.sub_(eta * (moment + gw + wd * w))
    grads = torch.autograd.grad(net.loss(xv, yv), net.arch_parameters() + weights)
    dalpha, v = grads[:2], grads[2:]
    R = r / torch.cat([x.reshape(-1) for x in v]).norm()
    with torch.no_grad():
        for w, b, vi in zip(weights, backup, v):
            w.copy_(b + R * vi)
    gp = torch.autograd.grad(net.loss(xt, yt), net.arch_parameters())
    with torch.no_grad():
        for w, b, vi in zip(weights, backup, v):
            w.copy_(b - R * vi)
    gn = torch.autograd.grad(net.loss(xt, yt), net.arch_parameters())
    with torch.no_grad():
        for w, b in zip(weights, backup):
            w.copy_(b)
    return [da - eta * (p - n) / (2 * R) for da, p, n in zip(dalpha, gp, gn)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--order", type=int, default=1, choices=[1, 2])
    ap.add_argument("--init-channels", type=int, default=8)
    ap.add_argument("--layers", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--steps", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    net = Network(a.init_channels, 10, a.layers, 3)
    w_opt = torch.optim.SGD(net.weights(), lr=0.025, momentum=0.9, weight_decay=3e-4)
    a_opt = torch.optim.Adam(net.arch_parameters(), lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
    shape = (a.batch_size, 3, a.image_size, a.image_size)
    xt, xv = torch.randn(shape), torch.randn(shape)
    yt, yv = torch.randint(0, 10, (a.batch_size,)), torch.randint(0, 10, (a.batch_size,))
    times, arch, weight = [], [], []
    for i in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        a_opt.zero_grad()
        if a.order == 1:
            net.loss(xv, yv).backward()  # the weights' gradients too, as architect.py's _backward_step
        else:
            for p, g in zip(net.arch_parameters(), unrolled_alpha_grads(net, w_opt, 0.025, xt, yt, xv, yv)):
                p.grad = g
        a_opt.step()
        t1 = time.perf_counter()
        w_opt.zero_grad()
        net.loss(xt, yt).backward()
        nn.utils.clip_grad_norm_(net.weights(), 5.0)
        w_opt.step()
        t2 = time.perf_counter()
        if i >= a.warmup:
            times.append(t2 - t0)
            arch.append(t1 - t0)
            weight.append(t2 - t1)
    print(json.dumps({
        "torch": torch.__version__, "threads": a.threads, "order": a.order, "init_channels": a.init_channels,
        "layers": a.layers, "batch_size": a.batch_size, "image_size": a.image_size, "steps": a.steps,
        "median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
        "arch_s": statistics.median(arch), "weight_s": statistics.median(weight),
    }))


if __name__ == "__main__":
    main()
