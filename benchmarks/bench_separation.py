"""r-separation: our exact engine against scikit-learn's brute-force nearest neighbours.

Both compute, for every point of an image-like training set (784 features in [0, 1],
10 classes, ``_workloads.mnist_like``), the l_inf distance to the nearest training point
of another class (Yang et al.'s Train-Train separation):

* ours: ``r_separation(X, y, norm='linf')`` (the per-point distances are
  ``report.train_train_distances``);
* reference: for each class ``c``, ``NearestNeighbors(n_neighbors=1, algorithm='brute',
  metric='chebyshev')`` fitted on the points of class ``c`` and queried with all points of
  the other classes; each point keeps the minimum over the classes that are not its own.
  That is every (point, other-class point) pair measured exactly, which is what the
  paper's code did.

The per-point distances of the two are compared for exact equality. Each run happens in
a fresh subprocess that loads the data from a ``.npy`` file, so its peak memory can be
read from ``getrusage``: "peak" is the process's maximum resident set size, "extra" that
peak minus the resident size just before the call (the data, torch and scikit-learn
loaded). The reference at the largest size would take hours, so by default it runs on
a seeded sample of queries (each against the full training set of its other classes) and
its time is scaled to all points; the sample's distances are still compared with ours.

Run:  python benchmarks/bench_separation.py [--sizes 5000 20000 60000] [--repeats 3]
      [--ref-full-max 20000] [--quick]
"""

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _rss_now():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def reference_distances(X, y, queries=None):
    """Per-point nearest other-class l_inf distance with scikit-learn's brute force."""
    from sklearn.neighbors import NearestNeighbors

    queries = np.arange(len(y)) if queries is None else queries
    out = np.full(len(queries), np.inf)
    yq = y[queries]
    for c in np.unique(y):
        ask = np.flatnonzero(yq != c)
        nn = NearestNeighbors(n_neighbors=1, algorithm="brute", metric="chebyshev")
        dist, _ = nn.fit(X[y == c]).kneighbors(X[queries[ask]])
        out[ask] = np.minimum(out[ask], dist[:, 0])
    return out


def child(args):
    """One measured run in this (fresh) process; prints a JSON line."""
    import torch  # noqa: F401  (loaded before the baseline, as both sides use it)

    from sklearn_robust.separation import r_separation

    X = np.load(args.data)
    y = np.load(args.labels)
    X = X.reshape(len(X), -1)
    queries = None
    if args.sample:
        rng = np.random.default_rng(0)
        queries = np.sort(rng.choice(len(y), size=args.sample, replace=False))
    base = _rss_now()
    start = time.perf_counter()
    if args.child == "ours":
        d = np.asarray(r_separation(X, y, norm="linf").train_train_distances)
    else:
        d = reference_distances(X, y, queries)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    np.save(args.out, d)
    print(json.dumps({"seconds": seconds, "peak": peak, "extra": peak - base,
                      "queries": len(d)}))


def measure(impl, data, labels, sample=0, threads=None):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "d.npy")
        cmd = [sys.executable, __file__, "--child", impl, "--data", data, "--labels", labels,
               "--out", out, "--sample", str(sample)]
        env = dict(os.environ)
        if threads:
            env["OMP_NUM_THREADS"] = str(threads)
        res = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
        result = json.loads(res.stdout.strip().splitlines()[-1])
        result["d"] = np.load(out)
    return result


def mib(b):
    return b / 2**20


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000, 60000])
    parser.add_argument("--repeats", type=int, default=3,
                        help="repeats at sizes <= --repeat-max (larger sizes run once)")
    parser.add_argument("--repeat-max", type=int, default=5000)
    parser.add_argument("--ref-full-max", type=int, default=20000,
                        help="above this size the reference runs on a sample of queries")
    parser.add_argument("--ref-sample", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--child", choices=["ours", "ref"], help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--labels", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--sample", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)
    if args.quick:
        args.sizes, args.repeats, args.ref_full_max, args.ref_sample = [600, 1500], 1, 600, 200

    import torch
    from _workloads import mnist_like
    print(f"r-separation, train-train, l_inf, MNIST-like 784 features; torch "
          f"{torch.__version__} ({torch.get_num_threads()} threads), "
          f"{platform.machine()}, {os.cpu_count()} CPUs")
    print(f"{'n':>6} {'ours s':>8} {'ref s':>9} {'ratio':>7} {'exact':>6} "
          f"{'ours peak MiB':>13} {'(extra)':>8} {'ref peak MiB':>12} {'(extra)':>8}  note")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            X, y = mnist_like(n, seed=0)
            data, labels = os.path.join(tmp, f"X{n}.npy"), os.path.join(tmp, f"y{n}.npy")
            np.save(data, X.reshape(n, -1))
            np.save(labels, y)
            del X
            repeats = args.repeats if n <= args.repeat_max else 1
            sample = 0 if n <= args.ref_full_max else min(args.ref_sample, n)
            ours, ref = [], []
            for _ in range(repeats):  # interleaved
                ref.append(measure("ref", data, labels, sample))
                ours.append(measure("ours", data, labels))
            d_ours = ours[0]["d"]
            if sample:
                q = np.sort(np.random.default_rng(0).choice(n, size=sample, replace=False))
                exact = bool(np.array_equal(d_ours[q], ref[0]["d"]))
                ref_s = statistics.median(r["seconds"] for r in ref) * n / sample
                note = f"ref: {sample} sampled queries, time x{n / sample:.0f}"
            else:
                exact = bool(np.array_equal(d_ours, ref[0]["d"]))
                ref_s = statistics.median(r["seconds"] for r in ref)
                note = f"{repeats} repeat(s), median"
            row = {
                "n": n, "ours_s": statistics.median(r["seconds"] for r in ours), "ref_s": ref_s,
                "exact": exact, "min": float(d_ours.min()), "mean": float(d_ours.mean()),
                "ours_peak": max(r["peak"] for r in ours),
                "ours_extra": max(r["extra"] for r in ours),
                "ref_peak": max(r["peak"] for r in ref), "ref_extra": max(r["extra"] for r in ref),
                "note": note,
            }
            rows.append(row)
            print(f"{n:>6} {row['ours_s']:>8.2f} {row['ref_s']:>9.2f} "
                  f"{row['ref_s'] / row['ours_s']:>6.1f}x {str(exact):>6} "
                  f"{mib(row['ours_peak']):>13.0f} {mib(row['ours_extra']):>8.0f} "
                  f"{mib(row['ref_peak']):>12.0f} {mib(row['ref_extra']):>8.0f}  {note}; "
                  f"min {row['min']:.4f}, mean {row['mean']:.4f}", flush=True)
    return rows


if __name__ == "__main__":
    main()
