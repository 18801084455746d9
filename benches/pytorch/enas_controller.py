"""The ENAS macro controller's sample + REINFORCE update in PyTorch on the CPU, for comparison
with the controller figure of `wgpu-nas bench enas` (`controller_ms_per_sample`).

The controller of melodyguan/enas (`general_controller.py`, whole channels, `search_for=macro`)
with the values of `cifar10_macro_search.sh` as `ControllerConfig::macro_space` has them: a
one-layer LSTM of 64 units without biases, a learned first input `g_emb`, per layer an operation
(6 branches) drawn from `tanh_constant * tanh(h @ w_soft)` (tanh constant 1.5, no temperature),
then from layer 1 one skip bit to every earlier layer by attention
(`v^T tanh(w_attn_1 h_j + w_attn_2 h)`, logits `[-q, q]`), the next input the mean of the
skipped-from layers' hidden states over `1 + count`. The skip penalty is the mean over layers of
KL(sigmoid(logits) || [1 - 0.4, 0.4]), weighted 0.8; the reward is the accuracy plus 1e-4 times
the (undifferentiated) entropy; an exponential moving-average baseline (0.99) moved sample by
sample; loss = sum_i (reward_i - baseline_i) / n * (-log p_i) + 0.8 / n * penalty_i, one backward
and one Adam step (lr 1e-3, betas 0/0.999, eps 1e-3) per update. Every weight uniform in
[-0.1, 0.1]. The child network is not involved: accuracies are a constant 0.5, as the Rust bench.

As `wgpu-nas bench enas` (4 samples per update by default, each a full rollout recorded for the
backward pass, then one update; the child's channels and batch size do not touch the controller):

    python3 benches/pytorch/enas_controller.py --threads 1 --samples 4 --warmup 1 --updates 10 --repeats 3

prints one JSON line: median/min/max milliseconds per sample (the time of `updates` updates of
`samples` rollouts each, divided by updates * samples) over the repetitions.
"""

import argparse
import json
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class MacroController(nn.Module):
    def __init__(self, num_layers=12, num_branches=6, hidden=64, tanh_constant=1.5, temperature=None,
                 skip_target=0.4):
        super().__init__()
        self.num_layers = num_layers
        self.tanh_constant = tanh_constant
        self.temperature = temperature
        self.lstm = nn.LSTMCell(hidden, hidden, bias=False)  # gate order i, f, g, o
        self.g_emb = nn.Parameter(torch.empty(1, hidden))
        self.w_emb = nn.Embedding(num_branches, hidden)
        self.w_soft = nn.Linear(hidden, num_branches, bias=False)
        self.w_attn_1 = nn.Linear(hidden, hidden, bias=False)
        self.w_attn_2 = nn.Linear(hidden, hidden, bias=False)
        self.v_attn = nn.Linear(hidden, 1, bias=False)
        for p in self.parameters():
            nn.init.uniform_(p, -0.1, 0.1)
        self.register_buffer("log_skip_target", torch.tensor([math.log(1.0 - skip_target), math.log(skip_target)]))

    def shape(self, logits):
        if self.temperature is not None:
            logits = logits / self.temperature
        if self.tanh_constant is not None:
            logits = self.tanh_constant * torch.tanh(logits)
        return logits

    def decide(self, logits, terms):
        """Draws one choice per row of logits [rows, K]; adds -log p (with grad) and the entropy
        (without) to terms."""
        log_p = F.log_softmax(logits, dim=-1)
        choice = torch.multinomial(log_p.exp(), 1)  # [rows, 1]
        terms["nll"].append(-log_p.gather(1, choice).sum())
        with torch.no_grad():
            terms["entropy"].append(-(log_p.exp() * log_p).sum())
        return choice.view(-1)

    def sample(self):
        """One rollout: (architecture as a flat list, -log p with grad, entropy, skip penalty with grad)."""
        h = torch.zeros_like(self.g_emb)
        c = torch.zeros_like(self.g_emb)
        inputs = self.g_emb
        anchors, anchors_w1, arc, skip_kl = [], [], [], []
        terms = {"nll": [], "entropy": []}
        for layer in range(self.num_layers):
            h, c = self.lstm(inputs, (h, c))
            op = self.decide(self.shape(self.w_soft(h)), terms)  # [1]
            arc.append(op)
            inputs = self.w_emb(op)  # [1, H]
            h, c = self.lstm(inputs, (h, c))
            if layer > 0:
                query = torch.tanh(torch.cat(anchors_w1, dim=0) + self.w_attn_2(h))  # [layer, H]
                query = self.v_attn(query)  # [layer, 1]
                logits = self.shape(torch.cat([-query, query], dim=1))  # [layer, 2]
                skip = self.decide(logits, terms)  # [layer]
                arc.append(skip)
                skip_prob = torch.sigmoid(logits)
                skip_kl.append((skip_prob * (torch.log(skip_prob) - self.log_skip_target)).sum())
                skip = skip.to(h.dtype).view(1, layer)
                inputs = skip @ torch.cat(anchors, dim=0) / (1.0 + skip.sum())
            else:
                inputs = self.g_emb
            anchors.append(h)
            anchors_w1.append(self.w_attn_1(h))
        nll = torch.stack(terms["nll"]).sum()
        entropy = torch.stack(terms["entropy"]).sum().item()
        skip_penalty = torch.stack(skip_kl).mean() if skip_kl else torch.zeros(())
        return torch.cat(arc).tolist(), nll, entropy, skip_penalty


class Reinforce:
    def __init__(self, controller, lr=1e-3, entropy_weight=1e-4, baseline_decay=0.99, skip_weight=0.8):
        self.controller = controller
        self.optimizer = torch.optim.Adam(controller.parameters(), lr=lr, betas=(0.0, 0.999), eps=1e-3)
        self.entropy_weight = entropy_weight
        self.baseline_decay = baseline_decay
        self.skip_weight = skip_weight
        self.baseline = None

    def update(self, samples, accuracies):
        n = len(samples)
        loss = 0.0
        for (_, nll, entropy, skip_penalty), acc in zip(samples, accuracies):
            reward = acc + self.entropy_weight * entropy
            if self.baseline is None:
                self.baseline = reward
            else:
                self.baseline = self.baseline_decay * self.baseline + (1.0 - self.baseline_decay) * reward
            loss = loss + (reward - self.baseline) / n * nll
            if self.skip_weight:
                loss = loss + self.skip_weight / n * skip_penalty
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()


def run_updates(trainer, updates, samples):
    for _ in range(updates):
        batch = [trainer.controller.sample() for _ in range(samples)]
        trainer.update(batch, [0.5] * samples)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--branches", type=int, default=6)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--samples", type=int, default=4, help="rollouts per update (num_aggregate)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=1, help="updates before timing")
    ap.add_argument("--updates", type=int, default=10, help="timed updates per repetition")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    trainer = Reinforce(MacroController(args.layers, args.branches, args.hidden))
    run_updates(trainer, args.warmup, args.samples)

    per_sample_ms = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        run_updates(trainer, args.updates, args.samples)
        per_sample_ms.append((time.perf_counter() - t) * 1e3 / (args.updates * args.samples))

    print(json.dumps({
        "bench": "enas_controller_macro",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "layers": args.layers,
        "branches": args.branches,
        "hidden": args.hidden,
        "samples_per_update": args.samples,
        "updates": args.updates,
        "repeats": args.repeats,
        "ms_per_sample_median": round(statistics.median(per_sample_ms), 3),
        "ms_per_sample_min": round(min(per_sample_ms), 3),
        "ms_per_sample_max": round(max(per_sample_ms), 3),
        "baseline": trainer.baseline,
    }))


if __name__ == "__main__":
    main()
