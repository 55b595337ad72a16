#!/usr/bin/python3
# Copied unchanged (apart from this comment) from /work/shared/oracle/compare_results.py so the
# tests can run without /work/shared. Do not edit: re-copy it if the oracle changes.
"""Compare one model's results in an attnstat results file with reference
values from seed_reference.py.

    compare_results.py RESULTS.h5 MODEL_NAME REFERENCE.json [--stages a,b]

Reads /models/<MODEL_NAME>/<stage>/<dataset> with h5py (Debian's
python3-h5py) and prints one line per dataset: the largest absolute and
relative difference and whether it is within tolerance.  Exit status 0 when
every compared dataset is within tolerance, 1 otherwise (a dataset missing
from the results counts as a failure)."""
import argparse
import json
import sys

import h5py
import numpy as np

# dataset -> (absolute tolerance, relative tolerance); a value passes when
# |got - want| <= atol + rtol * |want|.  Integers must match exactly.
TOL = {
    "histsim": {"bins": (1e-6, 1e-6), "within_diag": (1e-6, 0), "within_lower": (1e-6, 0),
                "js_similarity": (1e-6, 0), "mean_diag": (1e-6, 1e-5), "mean_lower": (1e-6, 1e-5)},
    "monotonicity": {"combinations": (0, 0), "violations": (0, 0), "violation_rate": (1e-12, 1e-9),
                     "absolute_error": (1e-12, 1e-7), "absolute_error_std": (1e-12, 1e-6),
                     "relative_error": (1e-12, 1e-7), "relative_error_std": (1e-12, 1e-6),
                     "alibi_slopes": (0, 1e-12)},
    "jacobian": {"a_mean": (1e-6, 1e-4), "entropy": (1e-5, 1e-4), "r_diag": (1e-5, 1e-4),
                 "r_offdiag": (1e-5, 1e-4), "cos_diag": (1e-5, 1e-4), "cos_ste": (1e-5, 1e-4)},
    "patterns": {"layer_entropy": (1e-6, 1e-6), "head_entropy": (1e-6, 1e-6),
                 "head_max_attention": (1e-6, 1e-6), "head_focus_position": (0, 0)},
    "activations": {"hist_edges": (1e-12, 1e-12), "q_hist": (1e-9, 1e-6), "k_hist": (1e-9, 1e-6),
                    "v_hist": (1e-9, 1e-6), "q_var": (1e-9, 1e-6), "k_var": (1e-9, 1e-6),
                    "v_var": (1e-9, 1e-6), "qk_mean": (1e-6, 1e-6), "qk_std": (1e-6, 1e-6)},
}
SCALARS = {"histsim": {"mean_diagonal": (1e-6, 1e-5), "mean_off_diagonal": (1e-6, 1e-5)}}


def check(name, got, want, atol, rtol):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return False, f"shape {got.shape} != reference {want.shape}"
    if got.size == 0:
        return True, "empty"
    diff = np.abs(got - want)
    ok = bool(np.all(diff <= atol + rtol * np.abs(want)))
    rel = diff / np.maximum(np.abs(want), 1e-300)
    return ok, f"max|d|={diff.max():.3g} max rel={rel.max():.3g}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("model")
    ap.add_argument("reference")
    ap.add_argument("--stages", default="")
    a = ap.parse_args()
    ref = json.load(open(a.reference))
    stages = a.stages.split(",") if a.stages else list(ref)
    failures = 0
    with h5py.File(a.results, "r") as f:
        for st in stages:
            for ds, (atol, rtol) in TOL.get(st, {}).items():
                if ds not in ref.get(st, {}):
                    continue
                path = f"/models/{a.model}/{st}/{ds}"
                if path not in f:
                    print(f"FAIL {path}: missing"); failures += 1; continue
                ok, msg = check(path, f[path][()], ref[st][ds], atol, rtol)
                print(f"{'ok  ' if ok else 'FAIL'} {path}: {msg}")
                failures += not ok
            for key, (atol, rtol) in SCALARS.get(st, {}).items():
                if key not in ref.get(st, {}):
                    continue
                grp = f"/models/{a.model}/{st}"
                got = f[grp].attrs.get(key) if grp in f else None
                if got is None and f"{grp}/{key}" in f:
                    got = f[f"{grp}/{key}"][()]
                if got is None:
                    print(f"FAIL {grp}@{key}: missing"); failures += 1; continue
                ok, msg = check(key, got, ref[st][key], atol, rtol)
                print(f"{'ok  ' if ok else 'FAIL'} {grp}@{key}: {msg}")
                failures += not ok
    print(f"{failures} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
