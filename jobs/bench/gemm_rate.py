#!/usr/bin/python3
"""gemm_rate.py RESULTS.h5 N D WALL BARE_BLOCKED BARE_SQUARE BLOCK HEADS: attnstat's GEMM rate
in the activations stage vs bare sgemm (GFLOP/s per process).
The GEMM's own rate comes from the summary log beside the results file: each rank's
"profile activations.gemm: S s, G GFLOP" line (time and work inside the cblas calls). For context,
also the whole stage: FLOPs of a layer (unit) 2 N^2 D over each rank's /run/rank_busy_seconds
(reading, histograms and softmax included)."""
import os
import re
import sys

import h5py

path, n, d, wall, bare_blk, bare_sq, block, heads = sys.argv[1:9]
n, d, wall, bare_blk, bare_sq = int(n), int(d), float(wall), float(bare_blk), float(bare_sq)
flop_unit = 2.0 * n * n * d
with h5py.File(path, "r") as f:
    busy = f["/run/rank_busy_seconds"][()]
    units = f["/run/rank_units"][()]
rates = [u * flop_unit / b * 1e-9 if b > 0 else float("nan") for u, b in zip(units, busy)]
mean_rate = sum(rates) / len(rates)
wall_rate = units.sum() * flop_unit / (wall * len(units)) * 1e-9
pct = 100.0 * mean_rate / bare_blk
def pc(g):
    return f"{100 * g / bare_blk:.0f}%", f"{100 * g / bare_sq:.0f}%"


rows = [
    ("bare sgemm, attnstat's shapes", f"{block}x{n}x{d // int(heads)} per head/block", f"{bare_blk:.1f}", *pc(bare_blk), "", ""),
    ("bare sgemm, one square product", f"{n}x{n}x{d}", f"{bare_sq:.1f}", *pc(bare_sq), "", ""),
]
for r, (u, b, g) in enumerate(zip(units, busy, rates)):
    rows.append((f"attnstat rank {r} (busy {b:.1f} s, {u} layers)", "FLOPs / busy s", f"{g:.1f}", *pc(g), "", ""))
rows.append(("attnstat whole stage, mean over ranks", "stage FLOPs / busy s", f"{mean_rate:.1f}", *pc(mean_rate), "", ""))
log = os.path.splitext(path)[0] + ".log"
gemm = []
if os.path.exists(log):
    for line in open(log):
        m = re.match(r"rank (\d+) profile activations\.gemm: ([0-9.]+) s, ([0-9.e+-]+) GFLOP", line)
        if m:
            gemm.append((int(m.group(1)), float(m.group(2)), float(m.group(3))))
for r, secs, gf in gemm:
    rows.append((f"attnstat rank {r} GEMM (timed in the stage)", f"{gf:.0f} GFLOP in {secs:.1f} s", f"{gf / secs:.1f}",
                 *pc(gf / secs), "", ""))
if gemm:
    g = sum(gf for _, _, gf in gemm) / sum(s for _, s, _ in gemm)
    rows.append(("attnstat GEMM, all ranks", "GFLOP / s inside cblas_sgemm", f"{g:.1f}", *pc(g),
                 ">=70% (same shapes)", "PASS" if 100 * g / bare_blk >= 70 else "FAIL"))
else:
    rows.append(("attnstat GEMM", "no profile line in the log", "", "", "", ">=70% (same shapes)", "FAIL"))
rows.append(("attnstat whole run", f"FLOPs / (wall {wall:.1f} s x ranks)", f"{wall_rate:.1f}", *pc(wall_rate), "", ""))
head = ("GEMM", "shape / basis", "GFLOP/s per process", "% of bare (same shapes)", "% of bare (square)", "target",
        "PASS/FAIL")
w = [max(len(x[i]) for x in rows + [head]) for i in range(len(head))]
fmt = "  ".join("{:<%d}" % x for x in w)
print(fmt.format(*head))
print("  ".join("-" * x for x in w))
for r in rows:
    print(fmt.format(*r))
print(f"(stage FLOPs {units.sum() * flop_unit:.3e} = {units.sum()} layers x 2 x {n}^2 x {d})")
