"""Scaling: how TRADES fit time grows with samples and attack steps, and r-separation
time with samples; a least-squares line in log-log coordinates gives the exponent
(time ~ size ** exponent).

* fit time vs n_samples: ``TRADESClassifier(eps=0.1, attack_steps=10, max_epochs=1)``
  on 8x8 digits-like images (``_workloads.digits_like``), n = 250, 500, 1000, 2000;
* fit time vs attack_steps: the same at n = 1000 with K = 1, 2, 5, 10 (the inner
  maximisation costs K forward/backward passes per batch, plus one clean pass and the
  outer step: expect an exponent below 1 that approaches 1 as K grows);
* r-separation time vs n: ``r_separation(X, y, norm='linf')`` on MNIST-like 784-feature
  points (``_workloads.mnist_like``), n = 2,000 to 20,000 (brute force would be 2).

Medians over repeats. Run:  python benchmarks/bench_scaling.py [--repeats 2] [--quick]
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _workloads import digits_like, mnist_like  # noqa: E402

from sklearn_robust import TRADESClassifier  # noqa: E402
from sklearn_robust.separation import r_separation  # noqa: E402


def exponent(sizes, seconds):
    """Slope of log(seconds) against log(size): the scaling exponent."""
    return float(np.polyfit(np.log(sizes), np.log(seconds), 1)[0])


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def curve(title, label, sizes, run, repeats):
    print(f"\n{title}")
    print(f"{label:>8} {'seconds':>9}")
    times = []
    for s in sizes:
        t = statistics.median(timed(lambda s=s: run(s)) for _ in range(repeats))
        times.append(t)
        print(f"{s:>8} {t:>9.3f}", flush=True)
    k = exponent(sizes, times)
    print(f"exponent (log-log least squares): {k:.2f}")
    return {"title": title, "sizes": list(sizes), "seconds": times, "exponent": k}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        fit_sizes, steps, fit_n, sep_sizes, repeats = [100, 200], [1, 2], 200, [400, 800], 1
    else:
        fit_sizes, steps, fit_n = [250, 500, 1000, 2000], [1, 2, 5, 10], 1000
        sep_sizes, repeats = [2000, 5000, 10000, 20000], args.repeats

    Xd, yd = digits_like(max(fit_sizes + [fit_n]), seed=0)
    TRADESClassifier(max_epochs=1, attack_steps=1, random_state=0).fit(Xd[:64], yd[:64])

    def fit(n, k=10):
        TRADESClassifier(eps=0.1, attack_steps=k, bounds=(0, 1), max_epochs=1,
                         random_state=0).fit(Xd[:n], yd[:n])

    Xs, ys = mnist_like(max(sep_sizes), seed=0)
    Xs = Xs.reshape(len(Xs), -1)

    results = [
        curve("TRADES fit time (1 epoch, K=10) vs n_samples", "n", fit_sizes, fit, repeats),
        curve(f"TRADES fit time (1 epoch, n={fit_n}) vs attack_steps", "K", steps,
              lambda k: fit(fit_n, k), repeats),
        curve("r_separation (train-train, l_inf, 784 features) time vs n", "n", sep_sizes,
              lambda n: r_separation(Xs[:n], ys[:n]), repeats),
    ]
    return results


if __name__ == "__main__":
    main()
