"""Run every benchmark in one go and print the machine, the load and each exact command.

    python benchmarks/run_all.py            # full sizes (about an hour on 2 CPU cores)
    python benchmarks/run_all.py --quick    # small sizes, a smoke test of every script

Each benchmark runs in its own process, with ``OMP_NUM_THREADS`` set to ``--threads``
(torch's intra-op threads and scikit-learn's OpenMP pools follow it), so ours and the
references always get the same threads. Output is also appended to ``--log``.
"""

import argparse
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent

FULL = [
    ["bench_training.py", "--workload", "digits", "--epochs", "2", "--repeats", "3"],
    ["bench_training.py", "--workload", "mnist", "--epochs", "1", "--repeats", "2",
     "--methods", "natural", "trades"],
    ["bench_attacks.py", "--repeats", "3"],
    ["bench_separation.py", "--sizes", "5000", "20000", "60000", "--repeats", "3"],
    ["bench_scaling.py", "--repeats", "2"],
    ["bench_distributed.py", "--epochs", "2", "--repeats", "2"],
    ["bench_autoattack.py", "--data", "digits", "mnist", "--model", "natural", "at",
     "--norm", "linf", "l2", "--n", "200", "--stages"],
]
QUICK = [
    ["bench_training.py", "--epochs", "1", "--repeats", "1", "--methods", "natural", "trades"],
    ["bench_attacks.py", "--quick", "--repeats", "1"],
    ["bench_separation.py", "--quick"],
    ["bench_scaling.py", "--quick"],
    ["bench_distributed.py", "--smoke"],
    ["bench_autoattack.py", "--n", "20", "--skip-reference"],
]


def shell(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except OSError:  # pragma: no cover
        return "?"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--threads", type=int, default=None,
                        help="OMP_NUM_THREADS for every benchmark (default: as set, or all)")
    parser.add_argument("--only", nargs="+", help="run only these scripts (e.g. bench_attacks)")
    parser.add_argument("--log", default=None, help="also append the output to this file")
    args = parser.parse_args(argv)
    env = dict(os.environ)
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    runs = QUICK if args.quick else FULL
    if args.only:
        runs = [r for r in runs if r[0].removesuffix(".py") in
                {o.removesuffix(".py") for o in args.only}]
    log = open(args.log, "a") if args.log else None

    def emit(text):
        print(text, flush=True)
        if log:
            log.write(text + "\n")
            log.flush()

    emit(f"# {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, python {sys.version.split()[0]}, "
         f"OMP_NUM_THREADS={env.get('OMP_NUM_THREADS', 'unset')}")
    model = shell("lscpu | grep -m1 'Model name'")
    emit(f"# nproc: {shell('nproc')}; {model}")
    for run in runs:
        cmd = [sys.executable, str(HERE / run[0]), *run[1:]]
        emit(f"\n$ python benchmarks/{' '.join(run)}")
        emit(f"# load before: {shell('uptime')}")
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
        for line in proc.stdout:
            emit(line.rstrip("\n"))
        if proc.wait():
            emit(f"# FAILED with exit code {proc.returncode}")
            return proc.returncode
        emit(f"# load after: {shell('uptime')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
