#!/usr/bin/env python3
"""Defender overhead benchmark (not a test): the same workloads bare and under `defender run`
(each backend), alternating, pinned to one CPU as a 1-vCPU task would be. Prints ratios
bare/defended (1.00 = free), the median of the pairs; then the defender's idle RSS and the
start-up time it adds.

    python3 bench/defender/bench.py [--target-dir DIR] [--pairs 5] [--cpu 0] [--no-build]
        [--backends notify,notify@5.10,ptrace]

A backend written `NAME@5.10` runs with the test-only `DEFENDER_ASSUME_KERNEL=5.10`: the
defender requests no kernel feature newer than 5.10 (Fargate's kernel), side by side with the
same backend on this machine's kernel.

Builds `defender` and `defender-probe` in release mode first (CARGO_TARGET_DIR or --target-dir).
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

WORKLOADS = [  # name, iterations
    ("files", 20000),
    ("threads", 5000),
    ("fork", 3000),
    ("fork-exec", 1500),
    ("malloc", 200000),
    ("connect", 3000),
]

POLICY = {
    "revision": 1,
    "rules": [{
        "name": "bench",
        "processes": {"effect": "prevent", "denied": ["nc", "/usr/bin/ncat"]},
        "dns": {"effect": "prevent", "denied": ["yahoo.com"]},
        "network": {"effect": "prevent", "denied_outbound": ["203.0.113.0/24"]},
    }],
}


def backend_env(b):
    """`notify@5.10` -> ("notify", environment assuming kernel 5.10)."""
    name, _, kernel = b.partition("@")
    env = dict(os.environ)
    env.pop("DEFENDER_ASSUME_KERNEL", None)
    if kernel:
        env["DEFENDER_ASSUME_KERNEL"] = kernel
    return name, env


def run_ns(cmd, cpu, env=None):
    """Runs one workload; returns (wall ns reported by the workload, CPU seconds of the whole
    process tree: the workload and, when defended, the defender)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(["taskset", "-c", str(cpu)] + cmd, capture_output=True, text=True, check=True,
                         env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    for line in out.stdout.splitlines():
        if line.startswith("bench "):
            return int(line.rsplit("ns=", 1)[1]), cpu_s
    raise RuntimeError(f"no result from {cmd}: {out.stdout} {out.stderr}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target-dir", default=os.environ.get("CARGO_TARGET_DIR", "target"))
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--cpu", type=int, default=0)
    ap.add_argument("--backends", default="notify,notify@5.10,ptrace")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply iteration counts")
    args = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if not args.no_build:
        env = dict(os.environ, CARGO_TARGET_DIR=args.target_dir)
        subprocess.run(["cargo", "build", "--release", "-p", "defender"], cwd=root, env=env, check=True)
    bindir = os.path.join(os.path.abspath(args.target_dir), "release")
    defender, probe = os.path.join(bindir, "defender"), os.path.join(bindir, "defender-probe")
    tmp = tempfile.mkdtemp(prefix="defender-bench-")
    policy = os.path.join(tmp, "policy.json")
    with open(policy, "w") as f:
        json.dump(POLICY, f)
    backends = args.backends.split(",")
    print(f"pinned to CPU {args.cpu}; {args.pairs} alternating pairs per backend; ratio = bare / defended")
    print("wall: elapsed time of the workload; cpu: CPU time of the whole tree (workload + defender),")
    print("which other jobs on a shared machine do not inflate")
    print(f"{'workload':<10} {'n':>7} {'bare ms':>9} "
          + " ".join(f"{b + ' wall':>12} {b + ' cpu':>11}" for b in backends))
    for name, n in WORKLOADS:
        n = max(1, int(n * args.scale))
        bare_cmd = [probe, "bench", name, str(n)]
        ratios = {b: [] for b in backends}
        cpu_ratios = {b: [] for b in backends}
        bares = []
        for _ in range(args.pairs):
            for b in backends:
                name_b, env_b = backend_env(b)
                guarded = [defender, "run", "--backend", name_b, "--policy-file", policy, "--"] + bare_cmd
                bare, bare_cpu = run_ns(bare_cmd, args.cpu)
                dfd, dfd_cpu = run_ns(guarded, args.cpu, env_b)
                bares.append(bare)
                ratios[b].append(bare / dfd)
                cpu_ratios[b].append(bare_cpu / dfd_cpu if dfd_cpu > 0 else 1.0)
        cols = " ".join(
            f"{statistics.median(ratios[b]):>12.2f} {statistics.median(cpu_ratios[b]):>11.2f}" for b in backends)
        print(f"{name:<10} {n:>7} {statistics.median(bares) / 1e6:>9.1f} {cols}", flush=True)

    # Idle RSS of the defender process while the app sleeps.
    for b in backends:
        name_b, env_b = backend_env(b)
        p = subprocess.Popen([defender, "run", "--backend", name_b, "--policy-file", policy, "--", "sleep", "3"],
                             stderr=subprocess.DEVNULL, env=env_b)
        time.sleep(1.0)
        rss = 0
        with open(f"/proc/{p.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
        p.wait()
        print(f"idle RSS ({b}): {rss / 1024:.1f} MiB")

    # Start-up added: `defender run -- /bin/true` minus `/bin/true`, median of 30.
    def wall(cmd, env=None):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL, env=env)
        return time.perf_counter() - t
    for b in backends:
        name_b, env_b = backend_env(b)
        bare = statistics.median(wall(["/bin/true"]) for _ in range(30))
        dfd = statistics.median(wall([defender, "run", "--backend", name_b, "--policy-file", policy, "--", "/bin/true"],
                                     env_b)
                                for _ in range(30))
        print(f"start-up added ({b}): {(dfd - bare) * 1000:.1f} ms")


if __name__ == "__main__":
    sys.exit(main())
