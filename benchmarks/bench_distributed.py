"""Data-parallel TRADES on CPU: two processes against one, same global batch.

Three configurations train ``TRADESClassifier(eps=0.1, attack_steps=10, bounds=(0, 1),
beta=6.0, random_state=0)`` (default SmallCNN, Adam 1e-3, no validation split) for a
fixed number of epochs, each in fresh processes:

* ``1x1``: one process, one torch thread (``OMP_NUM_THREADS=1``), batch 64;
* ``1x2``: one process, two threads: the fair single-process baseline on 2 cores;
* ``2x1``: ``torchrun --standalone --nproc_per_node 2`` (gloo), one thread per process,
  ``AccelerateMixin`` with ``Accelerator(cpu=True)``, batch 32 per rank (global 64).

Workloads: ``digits`` (the 1,347 training images of ``load_digits_images``) and ``mnist``
(4,000 real MNIST images of ``load_mnist_subset``, the stratified split of
``_workloads.real_mnist``). Seconds per epoch are skorch's epoch durations (``dur``,
rank 0 for ``2x1``): process start-up, data loading and the DDP set-up are not in them.
Speed-up = seconds per epoch of the one-process run / those of the two-process run.
Accelerate's even batches complete the last, short global batch by points from the start
of the epoch, so the two-process run trains on up to a batch more per epoch (1,408
points instead of 1,347 on digits, 4,032 instead of 4,000 on MNIST: the table shows it).
Clean test accuracy is shown to check that the three runs train alike.

Run:  python benchmarks/bench_distributed.py [--epochs 2] [--repeats 1]
      [--workloads digits mnist] [--smoke]   (--quick is the same as --smoke)
"""

import argparse
import contextlib
import io
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCRIPT = Path(__file__).resolve()
CONFIGS = {  # name: (processes, threads per process)
    "1x1": (1, 1),
    "1x2": (1, 2),
    "2x1": (2, 1),
}
GLOBAL_BATCH, EPS, STEPS = 64, 0.1, 10
SMOKE = dict(n_train=128, n_test=64, steps=2, epochs=1)


# ------------------------------------------------------------------ in the workers
def load(workload, n_train=None, n_test=None):
    """``X_train, X_test, y_train, y_test`` of a workload, cut to the sizes given."""
    if workload == "digits":
        from sklearn_robust.datasets import load_digits_images

        X_train, X_test, y_train, y_test = load_digits_images()
    else:
        from sklearn.model_selection import train_test_split

        from sklearn_robust.datasets import load_mnist_subset

        mnist = load_mnist_subset()
        X_train, X_test, y_train, y_test = train_test_split(
            mnist.images, mnist.target, train_size=4000, test_size=1000,
            stratify=mnist.target, random_state=0)
    return X_train[:n_train], X_test[:n_test], y_train[:n_train], y_test[:n_test]


def worker(args):
    """Fit each workload once in this process (or this rank); rank 0 writes the JSON."""
    import torch

    from sklearn_robust import TRADESClassifier

    torch.set_num_threads(args.threads)  # OMP_NUM_THREADS says the same; be sure
    accelerator, world, rank = None, 1, 0
    if args.distributed:
        from accelerate import Accelerator

        from sklearn_robust.estimators import AccelerateMixin

        class DistributedTRADES(AccelerateMixin, TRADESClassifier):
            pass

        accelerator = Accelerator(cpu=True)
        world, rank = accelerator.num_processes, accelerator.process_index

    def make(epochs, steps):
        params = dict(eps=EPS, attack_steps=steps, bounds=(0, 1), beta=6.0, lr=1e-3,
                      max_epochs=epochs, random_state=0)
        if accelerator is None:
            return TRADESClassifier(batch_size=GLOBAL_BATCH, **params)
        return DistributedTRADES(batch_size=GLOBAL_BATCH // world, device=None,
                                 accelerator=accelerator, **params)

    results = {}
    for workload in args.workloads:
        X_train, X_test, y_train, y_test = load(workload, args.n_train, args.n_test)
        with contextlib.redirect_stdout(io.StringIO()):  # the epoch log
            # warm-up: first optimiser use imports dynamo (seconds), not to be timed
            make(1, 1).fit(X_train[:2 * GLOBAL_BATCH], y_train[:2 * GLOBAL_BATCH])
            start = time.perf_counter()
            clf = make(args.epochs, args.steps).fit(X_train, y_train)
            fit_seconds = time.perf_counter() - start
        results[workload] = {
            "n_train": len(X_train), "epochs": args.epochs, "steps": args.steps,
            "epoch_seconds": [float(d) for d in clf.history[:, "dur"]],
            "fit_seconds": fit_seconds, "accuracy": float(clf.score(X_test, y_test)),
            # points trained on per epoch, all ranks (accelerate may pad the last batch)
            "points_per_epoch": world * sum(
                b["train_batch_size"] for b in clf.history[-1, "batches"]),
        }
    threads = torch.get_num_threads()
    if accelerator is not None:
        import torch.distributed as dist

        every = [None] * world
        dist.all_gather_object(every, threads)
        threads = every
    if rank == 0:
        Path(args.out).write_text(json.dumps(
            {"world": world, "threads": threads, "results": results}))


# ------------------------------------------------------------------ the driver
def launch(config, args, out, timeout):
    """Run the worker in fresh processes for one configuration; its JSON."""
    processes, threads = CONFIGS[config]
    cmd = [sys.executable, str(SCRIPT), "--worker", "--out", str(out), "--threads",
           str(threads), "--epochs", str(args.epochs), "--steps", str(args.steps),
           "--workloads", *args.workloads]
    if args.n_train is not None:
        cmd += ["--n-train", str(args.n_train), "--n-test", str(args.n_test)]
    if processes > 1:
        cmd[1:2] = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                    str(processes), str(SCRIPT)]
        cmd.append("--distributed")
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONWARNINGS": "ignore"}
    # own session: on a timeout, kill this launch's processes (torchrun's ranks) only
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                            text=True, start_new_session=True)
    try:
        log, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise RuntimeError(f"{config} did not finish in {timeout} s") from None
    if proc.returncode != 0:
        raise RuntimeError(f"{config} failed (exit {proc.returncode}):\n{log[-4000:]}")
    return json.loads(Path(out).read_text())


def load_average():
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


def table(rows):
    """The markdown table of ``rows`` (one dict per workload)."""
    lines = [
        "| workload | n train | epochs | 1 proc x 1 thread s/epoch | 1 proc x 2 threads "
        "s/epoch | 2 procs x 1 thread s/epoch | speed-up vs 1x1 | speed-up vs 1x2 | "
        "points/epoch 1 / 2 procs | clean acc 1x1 / 1x2 / 2x1 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        s = r["seconds"]
        acc = " / ".join(f"{r['accuracy'][c]:.3f}" for c in CONFIGS)
        lines.append(
            f"| {r['workload']} | {r['n_train']} | {r['epochs']} | {s['1x1']:.2f} | "
            f"{s['1x2']:.2f} | {s['2x1']:.2f} | {r['speedup_1x1']:.2f} | "
            f"{r['speedup_1x2']:.2f} | {r['points']['1x1']} / {r['points']['2x1']} | "
            f"{acc} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--steps", type=int, default=STEPS, help="K, the attack steps")
    parser.add_argument("--workloads", nargs="+", default=["digits", "mnist"],
                        choices=["digits", "mnist"])
    parser.add_argument("--smoke", "--quick", action="store_true",  # run_all's name too
                        help=f"tiny run (n_train {SMOKE['n_train']}, K {SMOKE['steps']}, "
                             "1 epoch): checks that it works, times nothing useful")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per launch")
    # the worker's own arguments (set by the driver)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--distributed", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--n-train", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--n-test", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    if args.smoke:
        args.n_train, args.n_test = SMOKE["n_train"], SMOKE["n_test"]
        args.steps, args.epochs = SMOKE["steps"], SMOKE["epochs"]

    import torch

    shown = " ".join(argv if argv is not None else sys.argv[1:])
    print(f"$ python benchmarks/bench_distributed.py {shown}".rstrip())
    print(f"TRADES eps {EPS}, K {args.steps}, global batch {GLOBAL_BATCH}, {args.epochs} "
          f"epochs, {args.repeats} repeats; torch {torch.__version__}, nproc "
          f"{os.cpu_count()}, {platform.processor() or platform.machine()}")
    print(f"load average before: {load_average()}", flush=True)
    runs = {config: [] for config in CONFIGS}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for config in CONFIGS:  # interleaved, so drift in machine load hits all
                run = launch(config, args, Path(tmp) / f"{config}-{repeat}.json",
                             args.timeout)
                processes, threads = CONFIGS[config]
                expected = [threads] * processes if processes > 1 else threads
                if run["world"] != processes or run["threads"] != expected:
                    raise RuntimeError(f"{config} ran as {run['world']} processes with "
                                       f"{run['threads']} threads")
                runs[config].append(run["results"])
    rows = []
    for workload in args.workloads:
        seconds, accuracy, points = {}, {}, {}
        for config in CONFIGS:
            per_epoch = [statistics.mean(r[workload]["epoch_seconds"]) for r in runs[config]]
            seconds[config] = statistics.median(per_epoch)
            accuracy[config] = runs[config][0][workload]["accuracy"]
            points[config] = runs[config][0][workload]["points_per_epoch"]
        first = runs["1x1"][0][workload]
        rows.append({
            "workload": workload, "n_train": first["n_train"], "epochs": first["epochs"],
            "seconds": seconds, "accuracy": accuracy, "points": points,
            "speedup_1x1": seconds["1x1"] / seconds["2x1"],
            "speedup_1x2": seconds["1x2"] / seconds["2x1"],
        })
    print(table(rows))
    print(f"load average after: {load_average()}")
    return rows


if __name__ == "__main__":
    main()
