"""Training time: our estimators against plain PyTorch loops of the same algorithms.

Each reference loop below is written out in full here (not imported from the library):
same network (``TextbookCNN``: SmallCNN's layers in the textbook order and the default
contiguous layout; ours pools before the second ReLU of a block and stores its
convolution weights channels-last, the same function), same data, batch size,
optimiser, K and epochs.
Reports the median seconds per epoch over repeats and the ratio ours / reference, all
from the same run. For TRADES, where the Adversarial Robustness Toolbox is installed,
a third column times ART's ``AdversarialTrainerTRADESPyTorch`` on the same network,
data, batch, optimiser, K and epochs (its inner maximisation is the attack it is given:
ART's ``ProjectedGradientDescent``, l_inf, eps 0.1, step 2.5 eps / K, uniform start,
which ascends cross-entropy on the labels rather than TRADES' KL; its outer loss is
TRADES'), with the ratio ours / ART.

Workloads: ``digits`` (the 1,347 training digits), ``mnist`` (the 4,000 real MNIST
training images of ``_workloads.real_mnist``) and ``synthetic28`` (4,000 random 28x28
images: shapes only, kept to compare with older figures).

Run:  python benchmarks/bench_training.py [--workload digits|mnist|synthetic28] [--epochs 3]
      [--repeats 3] [--methods natural trades score at] [--no-art]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import platform
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from sklearn_robust import ATClassifier, NaturalClassifier, SCOREClassifier, TRADESClassifier
from sklearn_robust.datasets import load_digits_images

try:  # run as a script or imported by the tests
    from _workloads import real_mnist
except ImportError:  # pragma: no cover
    from benchmarks._workloads import real_mnist

EPS, STEPS, BATCH, LR = 0.1, 10, 64, 1e-3
ALPHA = 2.5 * EPS / STEPS


def workload(name):
    if name == "digits":
        X, _, y, _ = load_digits_images()
        return X, y
    if name == "mnist":
        X, _, y, _ = real_mnist(seed=0)
        return X, y
    rng = np.random.RandomState(0)  # image-like 28x28 inputs, 10 classes
    X = rng.rand(4000, 1, 28, 28).astype(np.float32)
    y = rng.randint(0, 10, 4000)
    return X, y


# ------------------------------------------------------------------ reference loops
class TextbookCNN(torch.nn.Module):
    """SmallCNN's layers as one would write them: ``conv, ReLU, conv, ReLU, max-pool``
    blocks in the default (contiguous) layout. Same parameters, names and initial weights
    as ``SmallCNN`` under the same seed; ours pools before the second ReLU and stores
    its convolutions channels-last (the same function, see tests/test_speedups.py)."""

    def __init__(self, image_shape, n_classes, channels=(32, 64), hidden_units=256):
        super().__init__()
        nn = torch.nn
        in_channels, height, width = image_shape
        layers = []
        for out_channels in channels:
            layers += [nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.ReLU(),
                       nn.Conv2d(out_channels, out_channels, 3, padding=1), nn.ReLU()]
            if min(height, width) >= 4:
                layers.append(nn.MaxPool2d(2))
                height, width = height // 2, width // 2
            in_channels = out_channels
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(),
                                  nn.Linear(in_channels * height * width, hidden_units),
                                  nn.ReLU(), nn.Linear(hidden_units, n_classes))

    def forward(self, x):
        return self.head(self.features(x))


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
    model = TextbookCNN(X.shape[1:], 10)
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


# ------------------------------------------------------------------ ART's TRADES trainer
def art_available():
    try:
        import art.defences.trainer  # noqa: F401
    except ImportError:
        return False
    return True


def art_fit(X, y, epochs, seed):
    import logging

    from art.attacks.evasion import ProjectedGradientDescent
    from art.defences.trainer import AdversarialTrainerTRADESPyTorch
    from art.estimators.classification import PyTorchClassifier

    logging.getLogger("art").setLevel(logging.WARNING)
    torch.manual_seed(seed)
    model = TextbookCNN(X.shape[1:], 10)
    classifier = PyTorchClassifier(
        model=model, loss=torch.nn.CrossEntropyLoss(),
        optimizer=torch.optim.Adam(model.parameters(), lr=LR), input_shape=X.shape[1:],
        nb_classes=10, clip_values=(0.0, 1.0), device_type="cpu",
    )
    attack = ProjectedGradientDescent(classifier, norm=np.inf, eps=EPS, eps_step=ALPHA,
                                      max_iter=STEPS, num_random_init=1, batch_size=BATCH,
                                      verbose=False)
    trainer = AdversarialTrainerTRADESPyTorch(classifier, attack, beta=6.0)
    with contextlib.redirect_stderr(io.StringIO()):  # ART's epoch progress bar
        trainer.fit(X, y, batch_size=BATCH, nb_epochs=epochs)
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
    parser.add_argument("--workload", default="digits", choices=["digits", "mnist", "synthetic28"])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--methods", nargs="+", default=["natural", "at", "trades", "score"])
    parser.add_argument("--no-art", action="store_true", help="skip ART's TRADES column")
    args = parser.parse_args(argv)
    use_art = not args.no_art and art_available()
    X, y = workload(args.workload)
    print(f"workload {args.workload}: X {X.shape}, batch {BATCH}, K {STEPS}, "
          f"{args.epochs} epochs, {args.repeats} repeats, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    print(f"{'method':<8} {'ours s/epoch':>12} {'reference':>10} {'ratio':>6}"
          + (f" {'ART':>8} {'ours/ART':>8}" if use_art else ""))
    rows = []
    # warm-up: first use of torch's optimiser imports dynamo (seconds), not to be timed
    NaturalClassifier(max_epochs=1).fit(X[:64], y[:64])
    for method in args.methods:
        ours, ref, art = [], [], []
        with_art = use_art and method == "trades"
        for r in range(args.repeats):  # interleaved, so drift in machine load hits all
            ref.append(timed(reference_fit, method, X, y, args.epochs, r) / args.epochs)
            ours.append(timed(fit_ours, method, X, y, args.epochs, r) / args.epochs)
            if with_art:
                art.append(timed(art_fit, X, y, args.epochs, r) / args.epochs)
        row = (method, statistics.median(ours), statistics.median(ref),
               statistics.median(art) if art else None)
        rows.append(row)
        line = f"{method:<8} {row[1]:>12.3f} {row[2]:>10.3f} {row[1] / row[2]:>6.2f}"
        if row[3] is not None:
            line += f" {row[3]:>8.3f} {row[1] / row[3]:>8.2f}"
        print(line, flush=True)
    return rows


if __name__ == "__main__":
    main()
