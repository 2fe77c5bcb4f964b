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

Certified training (issue 30): ``ibp`` and ``crown-ibp`` time ``IBPClassifier(bound=...)``
(eps 0.1 in the box [0, 1], kappa 1 -> 0.5) against a plain loop written out below:
IBP propagates a box (centre, radius) through the layers, bounds the margins with the
last layer's rows ``w_y - w_j`` (elision) and trains on ``kappa CE(z, y) + (1 - kappa)
CE(z_worst, y)``; CROWN-IBP adds one CROWN pass back from the margins over IBP's
intermediate bounds, mixed ``beta crown + (1 - beta) ibp``. Both run the estimator's
per-step schedule with no warm-up and the ramp over the whole fit (``eps_warmup=0``,
``eps_ramp=1``), so every timed step computes the bound (CROWN-IBP: both bounds, beta
falling from 1 to 0). Before timing, the reference's bounds and loss are checked against
the library's (``training_margin_bounds``, ``IntervalBoundTraining``) on one batch with
the same weights.

Workloads: ``digits`` (the 1,347 training digits), ``mnist`` (the 4,000 real MNIST
training images of ``_workloads.real_mnist``) and ``synthetic28`` (4,000 random 28x28
images: shapes only, kept to compare with older figures).

Run:  python benchmarks/bench_training.py [--workload digits|mnist|synthetic28] [--epochs 3]
      [--repeats 3] [--methods natural trades score at ibp crown-ibp] [--no-art]
"""

import argparse
import contextlib
import io
import platform
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from sklearn_robust import (
    ATClassifier,
    IBPClassifier,
    NaturalClassifier,
    SCOREClassifier,
    ThreatModel,
    TRADESClassifier,
)
from sklearn_robust.datasets import load_digits_images
from sklearn_robust.estimators import SmallCNN
from sklearn_robust.objectives import IntervalBoundTraining
from sklearn_robust.verify import training_margin_bounds

try:  # run as a script or imported by the tests
    from _workloads import real_mnist
except ImportError:  # pragma: no cover
    from benchmarks._workloads import real_mnist

EPS, STEPS, BATCH, LR = 0.1, 10, 64, 1e-3
ALPHA = 2.5 * EPS / STEPS
#: Certified training: the methods, kappa at the end of the ramp, and the schedule's
#: warm-up and ramp (fractions of the fit's steps; every step inside the ramp).
CERTIFIED = ("ibp", "crown-ibp")
KAPPA_END, WARMUP, RAMP = 0.5, 0.0, 1.0


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


# ------------------------------------------------------------------ certified training
# The network as the chain of its layers: Conv2d, Linear, ReLU, MaxPool2d, Flatten (the
# layer types of TextbookCNN, SmallCNN and an MLP). Boxes are (lo, hi) pairs of tensors
# shaped like the layer's input, (N, C, H, W) or (N, d).
def chain(model):
    return [*model.features, *model.head]


def affine_abs(layer, r):
    """``|W| r``: the radius of an affine layer's image of a box of radius ``r``."""
    if isinstance(layer, torch.nn.Linear):
        return F.linear(r, layer.weight.abs())
    return F.conv2d(r, layer.weight.abs(), None, layer.stride, layer.padding,
                    layer.dilation, layer.groups)


def interval_boxes(layers, x, eps):
    """IBP through every layer but the last: the box entering each layer (the last
    entry enters the last layer). The input box is the eps-ball clipped to [0, 1]."""
    lo, hi = (x - eps).clamp(0, 1), (x + eps).clamp(0, 1)
    boxes = []
    for layer in layers[:-1]:
        boxes.append((lo, hi))
        if isinstance(layer, (torch.nn.Linear, torch.nn.Conv2d)):
            centre, radius = layer((hi + lo) / 2), affine_abs(layer, (hi - lo) / 2)
            lo, hi = centre - radius, centre + radius
        else:  # ReLU, MaxPool2d, Flatten: monotone, so they map the two ends
            lo, hi = layer(lo), layer(hi)
    boxes.append((lo, hi))
    return boxes


def ibp_margins(last, box, y):
    """Lower bounds (N, C) of ``z_y - z_j`` from the box entering the last (linear)
    layer, with its rows ``w_y - w_j`` ("elision"); 0 at ``j = y``."""
    lo, hi = box
    centre, radius = (hi + lo) / 2, (hi - lo) / 2
    rows = last.weight[y][:, None, :] - last.weight[None]  # (N, C, d)
    const = last.bias[y][:, None] - last.bias[None]
    return (torch.einsum("ncd,nd->nc", rows, centre)
            - torch.einsum("ncd,nd->nc", rows.abs(), radius) + const)


def pool_windows(t, k):
    """(..., C, H, W) -> (..., C, H // k, W // k, k * k): the windows of a k x k pool."""
    *lead, c, h, w = t.shape
    t = t[..., :h // k * k, :w // k * k]
    return t.reshape(*lead, c, h // k, k, w // k, k).transpose(-3, -2).flatten(-2)


def pool_unwindows(v, k, h, w):
    """The inverse of :func:`pool_windows` (zeros where the pool dropped rows)."""
    *lead, c, ho, wo, _ = v.shape
    v = v.unflatten(-1, (k, k)).transpose(-3, -2).reshape(*lead, c, ho * k, wo * k)
    return F.pad(v, (0, w - wo * k, 0, h - ho * k))


def crown_back(layer, a, const, lo, hi):
    """One layer of CROWN's backward pass: ``a . v_out + const >= a' . v_in + const'``
    for every ``v_in`` in the box ``lo, hi`` (IBP's bounds of the layer's input).
    ``a`` is (N, R, *output shape)."""
    n, rows = a.shape[:2]
    if isinstance(layer, torch.nn.Linear):
        return a @ layer.weight, const + a @ layer.bias
    if isinstance(layer, torch.nn.Conv2d):
        const = const + torch.einsum("nrchw,c->nr", a, layer.bias)
        back = F.conv_transpose2d(a.flatten(0, 1), layer.weight, None, layer.stride,
                                  layer.padding, 0, layer.groups, layer.dilation)
        h, w = lo.shape[-2:]  # rows a strided forward dropped: no gradient, zeros
        back = F.pad(back, (0, w - back.shape[-1], 0, h - back.shape[-2]))
        return back.reshape(n, rows, *lo.shape[1:]), const
    if isinstance(layer, torch.nn.Flatten):
        return a.reshape(n, rows, *lo.shape[1:]), const
    pos, neg = a.clamp_min(0), a.clamp_max(0)
    if isinstance(layer, torch.nn.ReLU):
        # upper line u (z - l) / (u - l), lower line alpha z (alpha = 1 if u > -l) on
        # unstable units; exact (z or 0) on the others
        unstable = (lo < 0) & (hi > 0)
        active = (lo >= 0).to(lo.dtype)
        width = torch.where(unstable, hi - lo, 1.0)  # finite where unused (gradients)
        up = torch.where(unstable, hi / width, active)
        offset = torch.where(unstable, -up * lo, 0.0)
        down = torch.where(unstable, (hi > -lo).to(lo.dtype), active)
        const = const + (neg * offset[:, None]).flatten(2).sum(-1)
        return pos * down[:, None] + neg * up[:, None], const
    # MaxPool2d (k x k, stride k): below, max >= z_i* (i* the largest lower bound);
    # above, max <= L + sum_i s_i (z_i - l_i), s_i = (u_i - L)^+ / (u_i - l_i) (L the
    # largest lower bound), or the constant max_i u_i, whichever is lower at the centre
    k = layer.kernel_size
    assert (layer.stride == k and layer.padding == 0 and layer.dilation == 1
            and isinstance(k, int) and not layer.ceil_mode), layer
    low, high = pool_windows(lo, k), pool_windows(hi, k)  # (N, C, Ho, Wo, k * k)
    top, choice = low.max(dim=-1)
    over = high > top[..., None]
    slope = torch.where(over, (high - top[..., None]) / torch.where(over, high - low, 1.0),
                        0.0)
    ceiling = high.amax(dim=-1)
    linear = (high - top[..., None]).clamp_min(0).sum(-1) / 2 <= ceiling - top
    slope = torch.where(linear[..., None], slope, 0.0)
    offset = torch.where(linear, top - (slope * low).sum(-1), ceiling)
    chosen = F.one_hot(choice, k * k).to(a.dtype)
    back = pos[..., None] * chosen[:, None] + neg[..., None] * slope[:, None]
    const = const + (neg * offset[:, None]).flatten(2).sum(-1)
    return pool_unwindows(back, k, *lo.shape[-2:]), const


def crown_ibp_margins(layers, boxes, y):
    """Lower bounds (N, C) of ``z_y - z_j`` by one CROWN pass from the margins of the
    C - 1 classes ``j != y`` back to the input, IBP's boxes at every ReLU and max pool."""
    last, n = layers[-1], y.shape[0]
    index = torch.arange(last.out_features - 1, device=y.device).expand(n, -1)
    others = index + (index >= y[:, None]).long()  # the classes j != y, (N, C - 1)
    a = last.weight[y][:, None, :] - last.weight[others]
    const = last.bias[y][:, None] - last.bias[others]
    for layer, (lo, hi) in zip(layers[-2::-1], boxes[-2::-1], strict=True):
        a, const = crown_back(layer, a, const, lo, hi)
    lo, hi = boxes[0]
    centre, radius = ((hi + lo) / 2).flatten(1), ((hi - lo) / 2).flatten(1)
    a = a.flatten(2)
    bound = (torch.einsum("nrd,nd->nr", a, centre)
             - torch.einsum("nrd,nd->nr", a.abs(), radius) + const)
    return bound.new_zeros((n, last.out_features)).scatter(1, others, bound)


def certified_margins(model, x, y, eps, beta):
    """IBP's margin bounds (``beta = 0``) or ``beta crown_ibp + (1 - beta) ibp``, the
    CROWN-IBP bound never below IBP's."""
    layers = chain(model)
    boxes = interval_boxes(layers, x, eps)
    ibp = ibp_margins(layers[-1], boxes[-1], y)
    if beta == 0:
        return ibp
    crown = torch.maximum(crown_ibp_margins(layers, boxes, y), ibp)
    return beta * crown + (1 - beta) * ibp


def certified_loss(model, x, y, eps, kappa, beta):
    logits = model(x)
    clean = F.cross_entropy(logits, y)
    if kappa == 1 or eps == 0:
        return clean
    worst = -certified_margins(model, x, y, eps, beta)  # z_worst: -m_j, 0 at y
    return kappa * clean + (1 - kappa) * F.cross_entropy(worst, y)


def certified_schedule(step, steps, method):
    """``(eps, kappa, beta)`` of a training step: the estimator's per-step ramp."""
    progress = min(1.0, step / steps)
    if progress <= WARMUP:
        t = 0.0
    elif RAMP <= 0:
        t = 1.0
    else:
        t = min(1.0, (progress - WARMUP) / RAMP)
        t = 1.0 if t >= 1 - 1e-9 else t
    kappa = KAPPA_END if t == 1 else 1 - t * (1 - KAPPA_END)
    return t * EPS, kappa, (1 - t if method == "crown-ibp" else 0.0)


def reference_fit(method, X, y, epochs, seed):
    torch.manual_seed(seed)
    model = TextbookCNN(X.shape[1:], 10)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    X_t, y_t = torch.as_tensor(X), torch.as_tensor(y)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X_t, y_t),
                                         batch_size=BATCH, shuffle=True)
    steps, step = epochs * len(loader), 0
    model.train()
    for _ in range(epochs):
        for xb, yb in loader:
            opt.zero_grad()
            if method in CERTIFIED:
                loss = certified_loss(model, xb, yb, *certified_schedule(step, steps, method))
            else:
                loss = reference_step(method, model, xb, yb)
            loss.backward()
            opt.step()
            step += 1
    return model


def check_certified_reference(X, y, eps=EPS / 2, kappa=0.75, beta=0.5):
    """The reference's bounds and loss are the library's, on one batch and the same
    weights (mid-ramp values of eps, kappa, beta); raises AssertionError if not.

    IBP: on our SmallCNN and on TextbookCNN (max pool and ReLU commute on boxes).
    CROWN-IBP and the loss (with its gradient): on SmallCNN's own layer order, since
    CROWN relaxes ``ReLU(max-pool)`` and ``max-pool(ReLU)`` differently; the timed
    reference runs TextbookCNN's order, with a ReLU relaxation on 4x the units before
    each pool.
    """
    x, labels = torch.as_tensor(X[:BATCH]), torch.as_tensor(y[:BATCH])
    torch.manual_seed(0)
    ours = SmallCNN(x.shape[1:], 10)
    torch.manual_seed(0)
    textbook = TextbookCNN(x.shape[1:], 10)
    close = dict(rtol=1e-4, atol=1e-4)
    with torch.no_grad():
        library = training_margin_bounds(ours, x, labels, eps=eps, lower=0, upper=1)
        torch.testing.assert_close(certified_margins(ours, x, labels, eps, 0.0), library,
                                   **close)
        torch.testing.assert_close(certified_margins(textbook, x, labels, eps, 0.0),
                                   library, **close)
        library = training_margin_bounds(ours, x, labels, eps=eps, lower=0, upper=1,
                                         crown_weight=beta)
        torch.testing.assert_close(certified_margins(ours, x, labels, eps, beta), library,
                                   **close)
    threat = ThreatModel(eps=EPS, bounds=(0, 1))
    for method_beta in (0.0, beta):
        objective = IntervalBoundTraining(kappa=kappa, crown_weight=method_beta, eps=eps)
        expected, _ = objective(ours, x, labels, threat)
        want = torch.autograd.grad(expected, list(ours.parameters()))
        loss = certified_loss(ours, x, labels, eps, kappa, method_beta)
        got = torch.autograd.grad(loss, list(ours.parameters()))
        torch.testing.assert_close(loss, expected, **close)
        for g, w in zip(got, want, strict=True):  # float32 sums, in different orders
            torch.testing.assert_close(g, w, rtol=0, atol=1e-3 * float(w.abs().max()))


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
    **{bound: (lambda e, s, bound=bound: IBPClassifier(
        bound=bound, eps=EPS, bounds=(0, 1), kappa_end=KAPPA_END, eps_warmup=WARMUP,
        eps_ramp=RAMP, max_epochs=e, random_state=s)) for bound in CERTIFIED},
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
    parser.add_argument("--methods", nargs="+", default=["natural", "at", "trades", "score"],
                        choices=list(OURS))
    parser.add_argument("--no-art", action="store_true", help="skip ART's TRADES column")
    args = parser.parse_args(argv)
    use_art = not args.no_art and art_available()
    X, y = workload(args.workload)
    print(f"workload {args.workload}: X {X.shape}, batch {BATCH}, K {STEPS}, "
          f"{args.epochs} epochs, {args.repeats} repeats, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    if any(method in CERTIFIED for method in args.methods):
        check_certified_reference(X, y)
        print(f"certified: eps {EPS} in [0, 1], ramp over the whole fit (warm-up "
              f"{WARMUP}, ramp {RAMP}), kappa 1 -> {KAPPA_END}, CROWN-IBP beta 1 -> 0; "
              f"the reference's bounds and loss checked against ours on one batch")
    print(f"{'method':<9} {'ours s/epoch':>12} {'reference':>10} {'ratio':>6}"
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
        line = f"{method:<9} {row[1]:>12.3f} {row[2]:>10.3f} {row[1] / row[2]:>6.2f}"
        if row[3] is not None:
            line += f" {row[3]:>8.3f} {row[1] / row[3]:>8.2f}"
        print(line, flush=True)
    return rows


if __name__ == "__main__":
    main()
