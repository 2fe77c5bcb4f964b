"""GPU check: CIFAR-shaped TRADES on PreAct ResNet-18, the estimator against a plain loop.

On one CUDA device, with random 32x32 colour images (shapes only: nothing here reads
CIFAR-10 or imports torchvision), measures in the same run:

- the training throughput, in images per second, of ``TRADESClassifier(module=
  'preactresnet18')`` and of a plain eager PyTorch TRADES loop written out below (the
  TRADES objective of the reference: the attack maximises ``KL(p(x) || p(x'))`` from
  ``x + 0.001 N(0, 1)``, 10 steps of 2/255 in the l_inf ball of 8/255 in ``[0, 1]``,
  the network in eval mode; the outer loss ``CE(f(x), y) + 6 KL(p(x) || p(x')) / B`` in
  train mode; SGD, lr 0.1, momentum 0.9, weight decay 2e-4). Both sides train the same
  network class on the same images with the same batch size, precision and memory
  layout, through a ``DataLoader`` with pinned memory, for two epochs of ``--batches``
  batches; the first epoch is warm-up (CUDA context, kernels, allocator) and only the
  second is timed (the estimator's from its history's ``dur``; the plain loop's between
  two ``torch.cuda.synchronize()``);
- the peak GPU memory of each side (``torch.cuda.max_memory_allocated``, reset between
  them);
- ``robust_accuracy_score(..., attack='auto')`` points per second on the trained
  estimator, with the labels set to its own predictions so that every point is
  attacked. The network barely learned anything, so most points break in AutoAttack's
  first stage: a robust model's robust points run all four stages and take longer.

Prints one JSON object (and writes it to ``--json PATH``). ``seconds_per_cifar10_epoch``
is 50,000 / the estimator's images per second: a training run of ``E`` epochs takes
about ``E x 50,000 / throughput`` seconds (plus evaluation). Without CUDA it exits with
status 2 and one line saying so. ``--module wideresnet --depth 34 --widen-factor 10``
times the TRADES recipe's network instead.

Run:  make gpu-check
      python benchmarks/gpu_check.py [--precision fp32|bf16|fp16] [--channels-last]
          [--batches 20] [--batch-size 128] [--eval-points 256] [--json PATH]
          [--module preactresnet18|wideresnet] [--depth 34] [--widen-factor 10]
"""

import argparse
import json
import platform
import sys
import time
from contextlib import nullcontext

import numpy as np
import torch
import torch.nn.functional as F

EPS, STEP_SIZE, ATTACK_STEPS, BETA = 8 / 255, 2 / 255, 10, 6.0
LR, MOMENTUM, WEIGHT_DECAY = 0.1, 0.9, 2e-4
CIFAR10_TRAIN = 50_000
AUTOCAST = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="TRADES on PreAct ResNet-18 on random CIFAR-shaped images: images per "
        "second of the estimator and of a plain PyTorch loop, peak GPU memory, AutoAttack "
        "points per second, as JSON. Needs a CUDA device.")
    parser.add_argument("--precision", choices=sorted(AUTOCAST), default="fp32",
                        help="autocast dtype of both sides (default fp32)")
    parser.add_argument("--channels-last", action="store_true",
                        help="channels-last memory layout on both sides")
    parser.add_argument("--batches", type=positive_int, default=20,
                        help="batches per epoch; two epochs per side, the second timed")
    parser.add_argument("--batch-size", type=positive_int, default=128)
    parser.add_argument("--eval-points", type=positive_int, default=256,
                        help="points attacked by AutoAttack")
    parser.add_argument("--module", choices=["preactresnet18", "wideresnet"],
                        default="preactresnet18")
    parser.add_argument("--depth", type=positive_int, default=34, help="wideresnet only")
    parser.add_argument("--widen-factor", type=positive_int, default=10,
                        help="wideresnet only")
    parser.add_argument("--json", metavar="PATH", help="also write the JSON object here")
    # for the tests on CUDA-less machines: tiny sizes on the CPU
    parser.add_argument("--allow-cpu", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--image-size", type=positive_int, default=32, help=argparse.SUPPRESS)
    parser.add_argument("--attack-steps", type=positive_int, default=ATTACK_STEPS,
                        help=argparse.SUPPRESS)
    parser.add_argument("--auto-version", choices=["standard", "fast"], default="standard",
                        help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def random_images(n, size, seed):
    """``n`` random ``(3, size, size)`` images in ``[0, 1]`` on 8-bit levels, 10 labels."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 256, (n, 3, size, size), dtype=np.uint8).astype(np.float32) / 255
    return X, rng.integers(0, 10, n)


def module_params(args):
    if args.module == "wideresnet":
        return {"depth": args.depth, "widen_factor": args.widen_factor}
    return {}


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak_memory(device):
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_gib(device):
    if device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 2**30


# ------------------------------------------------------------------ the plain loop
def plain_trades_epoch(model, optimizer, scaler, loader, args, device):
    """One epoch of TRADES, written out: attack in eval mode, outer loss in train mode."""
    dtype = AUTOCAST[args.precision]
    layout = torch.channels_last if args.channels_last else torch.contiguous_format

    def autocast():
        return nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)

    for x, y in loader:
        x = x.to(device, non_blocking=True).contiguous(memory_format=layout)
        y = y.to(device, non_blocking=True)
        model.eval()
        with torch.no_grad(), autocast():
            p_clean = F.softmax(model(x).float(), dim=1)
        x_adv = x + 0.001 * torch.randn_like(x)
        for _ in range(args.attack_steps):
            x_adv.requires_grad_(True)
            with autocast():
                log_p_adv = F.log_softmax(model(x_adv).float(), dim=1)
            kl = F.kl_div(log_p_adv, p_clean, reduction="sum")
            (grad,) = torch.autograd.grad(kl, x_adv)
            x_adv = x_adv.detach() + STEP_SIZE * grad.sign()
            x_adv = torch.min(torch.max(x_adv, x - EPS), x + EPS).clamp(0.0, 1.0)
        model.train()
        with autocast():
            logits, logits_adv = model(x).float(), model(x_adv).float()
        robust = F.kl_div(F.log_softmax(logits_adv, dim=1), F.softmax(logits, dim=1),
                          reduction="sum") / len(x)
        loss = F.cross_entropy(logits, y) + BETA * robust
        optimizer.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()


def time_plain_loop(X, y, args, device):
    """``(images per second, peak GiB)`` of the plain loop's second epoch."""
    from sklearn_robust.estimators import PreActResNet18, WideResNet

    torch.manual_seed(0)
    network = WideResNet if args.module == "wideresnet" else PreActResNet18
    model = network(n_classes=10, **module_params(args)).to(device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM,
                                weight_decay=WEIGHT_DECAY)
    scaler = torch.amp.GradScaler(device.type) if args.precision == "fp16" else None
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=args.batch_size, shuffle=True, pin_memory=device.type == "cuda",
        generator=torch.Generator().manual_seed(0))
    plain_trades_epoch(model, optimizer, scaler, loader, args, device)  # warm-up
    synchronize(device)
    start = time.perf_counter()
    plain_trades_epoch(model, optimizer, scaler, loader, args, device)
    synchronize(device)
    seconds = time.perf_counter() - start
    return len(X) / seconds, peak_memory_gib(device)


# ------------------------------------------------------------------ the estimator
def time_estimator(X, y, args, device):
    """``(fitted estimator, images per second, peak GiB)`` of the fit's second epoch."""
    from sklearn_robust import TRADESClassifier

    clf = TRADESClassifier(
        module=args.module, **{f"module__{k}": v for k, v in module_params(args).items()},
        eps=EPS, bounds=(0.0, 1.0), step_size=STEP_SIZE, attack_steps=args.attack_steps,
        beta=BETA, optimizer=torch.optim.SGD, lr=LR, optimizer__momentum=MOMENTUM,
        optimizer__weight_decay=WEIGHT_DECAY, batch_size=args.batch_size, max_epochs=2,
        precision=args.precision, channels_last=args.channels_last, device=device.type,
        random_state=0)
    clf.fit(X, y)
    return clf, len(X) / clf.history[-1, "dur"], peak_memory_gib(device)


def time_autoattack(clf, X, version, device):
    """AutoAttack (``version``, l_inf 8/255) points per second, every point attacked."""
    from sklearn_robust.metrics import robust_accuracy_score

    y = clf.predict(X)  # every point clean-correct: every point is attacked
    synchronize(device)
    start = time.perf_counter()
    robust = robust_accuracy_score(clf, X, y, eps=EPS, attack="auto", bounds=(0.0, 1.0),
                                   attack_params={"version": version}, random_state=0)
    synchronize(device)
    return len(X) / (time.perf_counter() - start), float(robust)


def main(argv=None):
    args = parse_args(argv)
    if not torch.cuda.is_available() and not args.allow_cpu:
        print(f"gpu-check: no CUDA device here (torch {torch.__version__}, "
              "torch.cuda.is_available() is False): it measures GPU throughput, so run it "
              "on a machine with an NVIDIA GPU and a CUDA build of torch.", file=sys.stderr)
        raise SystemExit(2)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    n_train = args.batches * args.batch_size
    X, y = random_images(n_train, args.image_size, seed=0)

    reset_peak_memory(device)
    plain_ips, plain_peak = time_plain_loop(X, y, args, device)
    reset_peak_memory(device)
    clf, estimator_ips, estimator_peak = time_estimator(X, y, args, device)
    X_eval, _ = random_images(args.eval_points, args.image_size, seed=1)
    auto_pps, auto_robust = time_autoattack(clf, X_eval, args.auto_version, device)

    result = {
        "device": (torch.cuda.get_device_name(device) if device.type == "cuda"
                   else f"cpu ({platform.processor() or platform.machine()})"),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "module": args.module, **module_params(args),
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "timed_batches": args.batches,
        "precision": args.precision,
        "channels_last": args.channels_last,
        "attack_steps": args.attack_steps,
        "estimator_images_per_s": estimator_ips,
        "plain_images_per_s": plain_ips,
        "estimator_to_plain_ratio": estimator_ips / plain_ips,
        "estimator_peak_memory_gib": estimator_peak,
        "plain_peak_memory_gib": plain_peak,
        "seconds_per_cifar10_epoch": CIFAR10_TRAIN / estimator_ips,
        "auto_version": args.auto_version,
        "auto_points": args.eval_points,
        "auto_points_per_s": auto_pps,
        "auto_robust_accuracy": auto_robust,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as fh:
            fh.write(text + "\n")
    return result


if __name__ == "__main__":
    main()
