"""Training time: our estimators against plain PyTorch loops of the same algorithms.

Each reference loop below is written out in full here (not imported from the library):
same network (a freshly seeded SmallCNN), same data, batch size, optimiser, K and epochs.
Reports the median seconds per epoch over repeats and the ratio ours / reference, all
from the same run.

Run:  python benchmarks/bench_training.py [--workload digits|synthetic28] [--epochs 3]
      [--repeats 3] [--methods natural trades score at]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from sklearn_robust import ATClassifier, NaturalClassifier, SCOREClassifier, TRADESClassifier
from sklearn_robust.datasets import load_digits_images
from sklearn_robust.estimators import SmallCNN

EPS, STEPS, BATCH, LR = 0.1, 10, 64, 1e-3
ALPHA = 2.5 * EPS / STEPS


def workload(name):
    if name == "digits":
        X, _, y, _ = load_digits_images()
        return X, y
    rng = np.random.RandomState(0)  # image-like 28x28 inputs, 10 classes
    X = rng.rand(4000, 1, 28, 28).astype(np.float32)
    y = rng.randint(0, 10, 4000)
    return X, y


# ------------------------------------------------------------------ reference loops
def _pgd(model, x, loss_of, start):
    model.eval()
    x_adv = start.clone()
    for _ in range(STEPS):
        x_adv.requires_grad_(True)
        (g,) = torch.autograd.grad(loss_of(model(x_adv)), x_adv)
        x_adv = torch.min(torch.max(x_adv.detach() + ALPHA * g.sign(), x - EPS), x + EPS)
        x_adv = x_adv.clamp(0, 1)
    model.train()
    return x_adv.detach()


def reference_step(method, model, x, y):
    if method == "natural":
        return F.cross_entropy(model(x), y)
    if method == "at":
        start = (x + torch.empty_like(x).uniform_(-EPS, EPS)).clamp(0, 1)
        x_adv = _pgd(model, x, lambda z: F.cross_entropy(z, y, reduction="sum"), start)
        return F.cross_entropy(model(x_adv), y)
    model.eval()
    with torch.no_grad():
        p = F.softmax(model(x), 1)
    start = (x + 0.001 * torch.randn_like(x)).clamp(0, 1)
    if method == "trades":
        x_adv = _pgd(model, x, lambda z: F.kl_div(F.log_softmax(z, 1), p, reduction="sum"),
                     start)
        logits = model(x)
        p_nat = F.softmax(logits, 1)
        kl = F.kl_div(F.log_softmax(model(x_adv), 1), p_nat, reduction="sum") / x.shape[0]
        return F.cross_entropy(logits, y) + 6.0 * kl
    x_adv = _pgd(model, x, lambda z: (F.softmax(z, 1) - p).pow(2).sum(), start)  # score
    p_nat = F.softmax(model(x), 1)
    onehot = F.one_hot(y, p_nat.shape[1]).float()
    return ((p_nat - onehot).pow(2).sum(1).mean()
            + 4.0 * (F.softmax(model(x_adv), 1) - p_nat).pow(2).sum(1).mean())


def reference_fit(method, X, y, epochs, seed):
    torch.manual_seed(seed)
    model = SmallCNN(X.shape[1:], 10)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    X_t, y_t = torch.as_tensor(X), torch.as_tensor(y)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X_t, y_t),
                                         batch_size=BATCH, shuffle=True)
    model.train()
    for _ in range(epochs):
        for xb, yb in loader:
            opt.zero_grad()
            loss = reference_step(method, model, xb, yb)
            loss.backward()
            opt.step()
    return model


# ------------------------------------------------------------------ ours
OURS = {
    "natural": lambda e, s: NaturalClassifier(max_epochs=e, random_state=s),
    "at": lambda e, s: ATClassifier(eps=EPS, attack_steps=STEPS, bounds=(0, 1), max_epochs=e,
                                    random_state=s),
    "trades": lambda e, s: TRADESClassifier(eps=EPS, attack_steps=STEPS, bounds=(0, 1),
                                            beta=6.0, max_epochs=e, random_state=s),
    "score": lambda e, s: SCOREClassifier(eps=EPS, attack_steps=STEPS, bounds=(0, 1),
                                          beta=4.0, max_epochs=e, random_state=s),
}


def timed(fn, *args):
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def fit_ours(method, X, y, epochs, seed):
    return OURS[method](epochs, seed).fit(X, y)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="digits", choices=["digits", "synthetic28"])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--methods", nargs="+", default=["natural", "at", "trades", "score"])
    args = parser.parse_args(argv)
    X, y = workload(args.workload)
    print(f"workload {args.workload}: X {X.shape}, batch {BATCH}, K {STEPS}, "
          f"{args.epochs} epochs, {args.repeats} repeats, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    print(f"{'method':<8} {'ours s/epoch':>12} {'reference':>10} {'ratio':>6}")
    rows = []
    # warm-up: first use of torch's optimiser imports dynamo (seconds), not to be timed
    NaturalClassifier(max_epochs=1).fit(X[:64], y[:64])
    for method in args.methods:
        ours, ref = [], []
        for r in range(args.repeats):  # interleaved, so drift in machine load hits both
            ref.append(timed(reference_fit, method, X, y, args.epochs, r) / args.epochs)
            ours.append(timed(fit_ours, method, X, y, args.epochs, r) / args.epochs)
        row = (method, statistics.median(ours), statistics.median(ref))
        rows.append(row)
        print(f"{method:<8} {row[1]:>12.3f} {row[2]:>10.3f} {row[1] / row[2]:>6.2f}")
    return rows


if __name__ == "__main__":
    main()
