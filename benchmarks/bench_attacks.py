"""Attacks: our PGD and APGD against torchattacks' at the same budget, time and success.

Same model (a SmallCNN trained briefly with our NaturalClassifier, in eval mode for
both), same points, same batch size (all points at once), same eps / step size / steps
/ restarts, uniform random starts in the ball for both (each library draws its own
noise: the starts are equal in distribution, not bit for bit). Success rate = the
share of the clean-correct points whose adversarial point is misclassified (checked
here, on the returned points, the same way for both; every returned point is also
checked to lie in the ball and in [0, 1]).

Rows (l_inf):
  pgd         PGD, 10 steps, alpha 2.5 eps / 10, 1 start      vs torchattacks.PGD
  pgd-r5      the same with 5 random starts                    vs torchattacks.MultiAttack
                                                                  of 5 PGDs (restarts on
                                                                  the points still robust)
  apgd-ce     APGD, cross-entropy, 50 iterations, 1 restart    vs torchattacks.APGD(loss='ce')
  apgd-dlr    APGD, DLR loss, 50 iterations, 1 restart         vs torchattacks.APGD(loss='dlr')

Workloads: ``digits`` (scikit-learn's 8x8 digits, 450 test points, eps 0.05), ``mnist``
(real MNIST: the model trained on the 4,000 training images of ``_workloads.real_mnist``,
attacked on 512 of its 1,000 test images, eps 0.1) and ``mnist28`` (the synthetic
MNIST-like images of ``_workloads.mnist_like``, kept to compare with older figures).

Run:  python benchmarks/bench_attacks.py [--workload digits mnist] [--repeats 3]
      [--quick]
"""

import argparse
import platform
import statistics
import time
import warnings

import numpy as np
import torch

from sklearn_robust import NaturalClassifier, ThreatModel
from sklearn_robust.attacks import APGD, PGD
from sklearn_robust.datasets import load_digits_images
from sklearn_robust.threat import step_length

try:  # run as a script or imported by the tests
    from _workloads import mnist_like, real_mnist
except ImportError:  # pragma: no cover
    from benchmarks._workloads import mnist_like, real_mnist

STEPS, APGD_ITERS, RESTARTS = 10, 50, 5


def workload(name, quick=False):
    """(module in eval mode, X_test tensor, y_test tensor, eps)."""
    if name == "digits":
        X, X_test, y, y_test = load_digits_images()
        eps, epochs = 0.05, 3 if quick else 10
    elif name == "mnist":
        X, X_test, y, y_test = real_mnist(seed=0)
        n_train, n_test = (300, 64) if quick else (4000, 512)
        X, y, X_test, y_test = X[:n_train], y[:n_train], X_test[:n_test], y_test[:n_test]
        eps, epochs = 0.1, 1 if quick else 3
    else:
        n_train, n_test = (300, 64) if quick else (3000, 512)
        X, y = mnist_like(n_train + n_test, seed=1)
        X, X_test, y, y_test = X[:n_train], X[n_train:], y[:n_train], y[n_train:]
        eps, epochs = 0.1, 1 if quick else 3
    if quick:
        X_test, y_test = X_test[:64], y_test[:64]
    est = NaturalClassifier(max_epochs=epochs, random_state=0, verbose=0).fit(X, y)
    module = est.module_.eval()
    return module, torch.as_tensor(X_test), torch.as_tensor(y_test, dtype=torch.long), eps


def ours(kind, eps, n, seed):
    threat = ThreatModel(eps=eps, bounds=(0.0, 1.0))
    common = {"batch_size": n, "random_state": seed}
    if kind in ("pgd", "pgd-r5"):
        restarts = RESTARTS if kind == "pgd-r5" else 1
        return PGD(threat, steps=STEPS, step_size=step_length(eps, STEPS), restarts=restarts,
                   **common)
    loss = kind.split("-")[1]
    return APGD(threat, loss=loss, steps=APGD_ITERS, **common)


def reference(kind, model, eps, seed):
    import torchattacks

    alpha = step_length(eps, STEPS)
    if kind == "pgd":
        return torchattacks.PGD(model, eps=eps, alpha=alpha, steps=STEPS, random_start=True)
    if kind == "pgd-r5":
        return torchattacks.MultiAttack([
            torchattacks.PGD(model, eps=eps, alpha=alpha, steps=STEPS, random_start=True)
            for _ in range(RESTARTS)
        ])
    loss = kind.split("-")[1]
    return torchattacks.APGD(model, norm="Linf", eps=eps, steps=APGD_ITERS, n_restarts=1,
                             seed=seed, loss=loss)


def success(model, X, y, X_adv, eps):
    """Share of clean-correct points broken; also checks ball and bounds."""
    assert float((X_adv - X).abs().max()) <= eps + 1e-5
    assert float(X_adv.min()) >= 0 and float(X_adv.max()) <= 1
    with torch.no_grad():
        correct = model(X).argmax(1) == y
        broken = model(X_adv).argmax(1) != y
    return float((broken & correct).sum()) / max(int(correct.sum()), 1)


def run_ours(kind, model, X, y, eps, seed):
    attack = ours(kind, eps, len(X), seed)
    start = time.perf_counter()
    X_adv = attack(model, X, y)
    return time.perf_counter() - start, X_adv


def run_reference(kind, model, X, y, eps, seed):
    torch.manual_seed(seed)
    attack = reference(kind, model, eps, seed)
    start = time.perf_counter()
    X_adv = attack(X, y)
    return time.perf_counter() - start, X_adv


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", nargs="+", default=["digits", "mnist"],
                        choices=["digits", "mnist", "mnist28"])
    parser.add_argument("--attacks", nargs="+", default=["pgd", "pgd-r5", "apgd-ce", "apgd-dlr"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    args = parser.parse_args(argv)
    global APGD_ITERS, RESTARTS
    if args.quick:
        APGD_ITERS, RESTARTS = 10, 2
    warnings.filterwarnings("ignore", category=UserWarning)
    rows = []
    for name in args.workload:
        model, X, y, eps = workload(name, args.quick)
        with torch.no_grad():
            clean = float((model(X).argmax(1) == y).float().mean())
        print(f"\nworkload {name}: X {tuple(X.shape)}, eps {eps}, clean accuracy {clean:.3f}, "
              f"PGD {STEPS} steps, APGD {APGD_ITERS} iterations, batch {len(X)}, "
              f"{args.repeats} repeats, torch {torch.__version__}, "
              f"{torch.get_num_threads()} threads, {platform.machine()}")
        if args.quick:
            print(f"(quick: APGD {APGD_ITERS} iterations, {RESTARTS} restarts)")
        print(f"{'attack':<9} {'ours s':>8} {'ref s':>8} {'ratio':>6}   "
              f"{'ours success':>12} {'ref success':>11}")
        run_ours("pgd", model, X[:8], y[:8], eps, 0)  # warm-up, not timed
        run_reference("pgd", model, X[:8], y[:8], eps, 0)
        for kind in args.attacks:
            t_ours, t_ref, s_ours, s_ref = [], [], [], []
            for r in range(args.repeats):  # interleaved: load drift hits both
                t, X_adv = run_reference(kind, model, X, y, eps, r)
                t_ref.append(t)
                s_ref.append(success(model, X, y, X_adv, eps))
                t, X_adv = run_ours(kind, model, X, y, eps, r)
                t_ours.append(t)
                s_ours.append(success(model, X, y, X_adv, eps))
            row = (name, kind, statistics.median(t_ours), statistics.median(t_ref),
                   statistics.median(s_ours), statistics.median(s_ref))
            rows.append(row)
            print(f"{kind:<9} {row[2]:>8.3f} {row[3]:>8.3f} {row[2] / row[3]:>6.2f}   "
                  f"{row[4]:>12.3f} {row[5]:>11.3f}")
    return rows


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
