"""CROWN certificates against ART's zonotope (DeepZ) and interval (IBP) verifiers.

Small ReLU networks on scikit-learn's 8x8 digits (pixels in [0, 1]): MLPs 64-32-32-10
and 64-64-10 on flat rows, and a pooling-free CNN (conv 8@3x3 stride 2, conv 16@3x3
stride 2, linear 64, linear 10: the layers ART's DeepZ converts), each trained with
the library naturally and with TRADES (eps 0.1), 20 epochs, random_state=0. On the
first ``--points`` hold-out points, at l_inf eps 0.01, 0.02 and 0.05, it counts

* ours: ``certified_accuracy_score(method='crown', bounds=(0, 1))`` (and ``'ibp'``):
  points correct AND proven for their label, input box [0, 1] intersected with the ball;
* ART DeepZ (``PytorchDeepZ.certify(cent, eps, prediction=y)``, ART 1.20): the same
  count, correct AND proven for the true label. The input zonotope is ART's default
  ``pre_process`` (ball intersected with [0, 1]: one error term per pixel, shrunk where
  the ball leaves the range), re-implemented here because ART's own fails on NumPy 2.4;
* ART interval (``PyTorchIBPClassifier.predict_intervals(bounds=eps, limits=[0, 1])``
  + ``certify``): ART's IBP compares the lower bound of the true logit with the upper
  bounds of the others (raw logits, not margins);

with the seconds per point of each (one point at a time for DeepZ, as ART's API does;
batched for ours and ART's IBP), and a soundness cross-check: every point ART's DeepZ
certifies that CROWN does not, and every point any verifier certifies that AutoAttack
(``robust_accuracy_score(attack='auto')``) breaks (must be none).

Run:  python benchmarks/bench_verify_art.py [--points 100] [--threads 1] [--quick]
"""

import argparse
import logging
import time
import warnings

import numpy as np
import torch
from torch import nn

from sklearn_robust import NaturalClassifier, TRADESClassifier
from sklearn_robust.datasets import load_digits_images
from sklearn_robust.metrics import certified_accuracy_score, robust_accuracy_score


class PlainCNN(nn.Module):
    """A CNN of Conv2d, ReLU and Linear children only, in forward order (ART's format)."""

    mode_independent_forward = True

    def __init__(self, n_classes=10, channels=(8, 16), hidden=64):
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels[0], 3, stride=2, padding=1)  # 8x8 -> 4x4
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(channels[0], channels[1], 3, stride=2, padding=1)  # -> 2x2
        self.relu2 = nn.ReLU()
        self.fc1 = nn.Linear(channels[1] * 4, hidden)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(hidden, n_classes)

    def forward(self, x):
        if x.dim() == 3:
            x = x.unsqueeze(1)
        x = self.relu2(self.conv2(self.relu1(self.conv1(x))))
        return self.fc2(self.relu3(self.fc1(torch.flatten(x, 1))))

    def sequential_layers(self):
        return [self.conv1, self.relu1, self.conv2, self.relu2, nn.Flatten(), self.fc1,
                self.relu3, self.fc2]


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - start


def train(arch, kind, epochs):
    flat = arch != "cnn"
    X_train, X_test, y_train, y_test = load_digits_images(flat=flat)
    common = dict(max_epochs=epochs, random_state=0)
    if arch == "cnn":
        common.update(module=PlainCNN)
    else:
        common.update(module__hidden_units=arch)
    clf = (NaturalClassifier(**common) if kind == "natural" else
           TRADESClassifier(eps=0.1, attack_steps=10, **common)).fit(X_train, y_train)
    return clf, X_test, y_test


def art_network(clf, arch):
    """A torch module whose children ART converts, holding the trained weights."""
    module = clf.module_
    if arch == "cnn":
        net = PlainCNN()
        net.load_state_dict({k: v.detach().cpu().contiguous()
                             for k, v in module.state_dict().items()})
    else:
        layers = [m for m in module.sequential_layers()]
        net = nn.Sequential(*[type(m)(m.in_features, m.out_features) if isinstance(m, nn.Linear)
                              else nn.ReLU() for m in layers])
        for mine, theirs in zip(net, layers, strict=True):
            if isinstance(mine, nn.Linear):
                mine.weight.data.copy_(theirs.weight.detach().cpu())
                mine.bias.data.copy_(theirs.bias.detach().cpu())
    return net.float().eval()


def build_art(net, input_shape):
    from art.estimators.certification.deep_z import PytorchDeepZ
    from art.estimators.certification.interval import PyTorchIBPClassifier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        common = dict(loss=nn.CrossEntropyLoss(), input_shape=input_shape, nb_classes=10,
                      clip_values=(0.0, 1.0), device_type="cpu")
        deepz = PytorchDeepZ(model=net, **common)
        ibp = PyTorchIBPClassifier(model=net, **common)
    deepz.model.set_forward_mode("abstract")
    ibp.model.set_forward_mode("abstract")
    return deepz, ibp


def art_pre_process(sample, eps):
    """ART's ``ZonoBounds.pre_process`` (one error term per pixel, box [0, 1]), vectorised.

    ART 1.20's own ``adjust_to_within_bounds`` assigns a 1-element array into an array
    element, which NumPy >= 2.4 refuses ("setting an array element with a sequence"), so
    its default path fails here. This is the same arithmetic: a pixel whose ball leaves
    [0, 1] on one side gets centre and radius of the clipped interval.
    """
    shape = sample.shape
    x = sample.reshape(-1).astype(np.float64)
    lo, hi = np.maximum(x - eps, 0.0), np.minimum(x + eps, 1.0)
    cent = ((lo + hi) / 2).reshape((1,) + shape)
    eps_terms = np.diag((hi - lo) / 2).reshape((x.size,) + shape)
    return cent, eps_terms


def deepz_certify(deepz, X, y, eps):
    """ART's documented loop: pre_process each point's box, then certify(prediction=y)."""
    proven = np.zeros(len(y), dtype=bool)
    with torch.no_grad():
        for i, (sample, label) in enumerate(zip(X, y, strict=True)):
            cent, eps_terms = art_pre_process(sample, eps)
            proven[i] = deepz.certify(cent=cent, eps=eps_terms, prediction=int(label))
    return proven


def art_ibp_certify(ibp, X, y, eps):
    with torch.no_grad():
        preds = ibp.predict_intervals(X, bounds=float(eps), limits=[0.0, 1.0])
    return ibp.certify(preds, y)


def certified_mask(certificates, n):
    """Boolean mask of the certified points of a ``Certificates`` object."""
    mask = np.asarray(certificates.certified, dtype=bool)
    assert mask.shape == (n,)
    return mask


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--eps", type=float, nargs="+", default=[0.01, 0.02, 0.05])
    parser.add_argument("--nets", nargs="+", default=["32-32", "64", "cnn"])
    parser.add_argument("--kinds", nargs="+", default=["natural", "trades"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-attack", action="store_true", help="skip AutoAttack")
    parser.add_argument("--quick", action="store_true",
                        help="20 points, 3 epochs, the 32-32 MLP only, eps 0.05")
    args = parser.parse_args(argv)
    if args.quick:
        args.points, args.epochs, args.nets, args.eps = 20, 3, ["32-32"], [0.05]
    torch.set_num_threads(args.threads)
    logging.getLogger("art").setLevel(logging.WARNING)

    rows = []
    header = (f"{'net':>6} {'train':>7} {'eps':>5} {'clean':>5} | {'crown':>5} {'ms/pt':>6} | "
              f"{'deepz':>5} {'ms/pt':>6} | {'ibp':>4} {'ms/pt':>6} | {'artibp':>6} {'ms/pt':>6} | "
              f"{'auto':>4} | art-not-ours, broken")
    print(header)
    for net_name in args.nets:
        arch = "cnn" if net_name == "cnn" else tuple(int(u) for u in net_name.split("-"))
        for kind in args.kinds:
            (clf, X, y), fit_s = timed(train, arch, kind, args.epochs)
            X, y = X[:args.points], y[:args.points]
            n = len(y)
            correct = clf.predict(X) == y
            net = art_network(clf, arch)
            with torch.no_grad():  # the copy computes the same logits
                ours_logits = clf.module_.eval()(torch.as_tensor(X)).detach()
                art_logits = net(torch.as_tensor(X))
            copy_err = float((ours_logits - art_logits).abs().max())
            deepz, ibp = build_art(net, X.shape[1:])
            print(f"# {net_name} {kind}: fit {fit_s:.1f} s, max |logit(ours) - logit(ART copy)| "
                  f"= {copy_err:.1e}", flush=True)
            for eps in args.eps:
                (_, crown_cert), crown_s = timed(
                    certified_accuracy_score, clf, X, y, eps=eps, method="crown",
                    bounds=(0, 1), return_certificates=True)
                crown = certified_mask(crown_cert, n) & correct
                (_, ibp_cert), ibp_s = timed(
                    certified_accuracy_score, clf, X, y, eps=eps, method="ibp",
                    bounds=(0, 1), return_certificates=True)
                ours_ibp = certified_mask(ibp_cert, n) & correct
                dz, dz_s = timed(deepz_certify, deepz, X, y, eps)
                dz = dz & correct
                aibp, aibp_s = timed(art_ibp_certify, ibp, X, y, eps)
                aibp = aibp & correct
                if args.no_attack:
                    broken, auto_acc = np.zeros(n, dtype=bool), float("nan")
                else:
                    (auto_acc, X_adv) = robust_accuracy_score(
                        clf, X, y, eps=eps, attack="auto", bounds=(0, 1), random_state=0,
                        return_adversarial=True)
                    broken = clf.predict(X_adv) != y
                art_not_ours = np.flatnonzero(dz & ~crown).tolist()
                unsound = {name: np.flatnonzero(mask & broken).tolist()
                           for name, mask in (("crown", crown), ("ibp", ours_ibp),
                                              ("deepz", dz), ("art_ibp", aibp))
                           if (mask & broken).any()}
                row = dict(net=net_name, train=kind, eps=eps, n=n, fit_s=fit_s,
                           clean=int(correct.sum()), copy_err=copy_err,
                           crown=int(crown.sum()), crown_ms=1e3 * crown_s / n,
                           ibp=int(ours_ibp.sum()), ibp_ms=1e3 * ibp_s / n,
                           deepz=int(dz.sum()), deepz_ms=1e3 * dz_s / n,
                           art_ibp=int(aibp.sum()), art_ibp_ms=1e3 * aibp_s / n,
                           auto=int(round(auto_acc * n)) if auto_acc == auto_acc else -1,
                           art_not_ours=art_not_ours, certified_but_broken=unsound)
                rows.append(row)
                print(f"{net_name:>6} {kind:>7} {eps:>5} {row['clean']:>5} | "
                      f"{row['crown']:>5} {row['crown_ms']:>6.2f} | "
                      f"{row['deepz']:>5} {row['deepz_ms']:>6.2f} | "
                      f"{row['ibp']:>4} {row['ibp_ms']:>6.2f} | "
                      f"{row['art_ibp']:>6} {row['art_ibp_ms']:>6.2f} | "
                      f"{row['auto']:>4} | {art_not_ours}, {unsound}", flush=True)
    return rows


if __name__ == "__main__":
    main()
