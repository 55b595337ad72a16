#!/usr/bin/python3
"""h5same.py A.h5 B.h5 [GROUP] [--stats-only]: exit 0 when every dataset and attribute under GROUP (default
/models) is bitwise identical in both files (same names, shapes, dtypes, bytes); prints each
difference otherwise. Run-dependent provenance (/run, root times) is outside /models.
--stats-only leaves out the model attributes that name where the inputs came from (source,
input:*, input_key:*, input_digest:*) and the stage groups' key (a hash of them), for comparing
runs over copies of the same data."""
import sys

import h5py
import numpy as np


def canon(v):
    """bytes of numeric attributes, text of string ones (object arrays hold pointers)"""
    a = np.asarray(v)
    if a.dtype.kind in "OSU":
        return repr(a.tolist())
    return a.dtype.str.encode() + a.tobytes()


def items(f, group):
    out = {}

    def visit(name, obj):
        key = f"{group}/{name}"
        if isinstance(obj, h5py.Dataset):
            out[key] = ("dataset", obj.dtype.str, obj.shape, obj[()].tobytes() if obj.shape != () else
                        np.asarray(obj[()]).tobytes())
        for k, v in obj.attrs.items():
            if k in ("DIMENSION_LIST", "REFERENCE_LIST"):
                continue
            out[f"{key}@{k}"] = ("attr", canon(v))
    g = f[group]
    for k, v in g.attrs.items():
        out[f"{group}@{k}"] = ("attr", canon(v))
    g.visititems(visit)
    return out


PROVENANCE = ("source", "input:", "input_key:", "input_digest:")
PROVENANCE_EXACT = ("key",)


def main():
    args = [x for x in sys.argv[1:] if not x.startswith("--")]
    stats_only = "--stats-only" in sys.argv
    a, b = args[0], args[1]
    group = args[2] if len(args) > 2 else "/models"
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        ia, ib = items(fa, group), items(fb, group)
    if stats_only:
        keep = lambda k: not ("@" in k and (k.split("@", 1)[1].startswith(PROVENANCE) or
                                            k.split("@", 1)[1] in PROVENANCE_EXACT))
        ia = {k: v for k, v in ia.items() if keep(k)}
        ib = {k: v for k, v in ib.items() if keep(k)}
    bad = 0
    for k in sorted(set(ia) | set(ib)):
        if k not in ia or k not in ib:
            print(f"only in {'B' if k not in ia else 'A'}: {k}")
            bad += 1
        elif ia[k] != ib[k]:
            print(f"differs: {k}")
            bad += 1
    print(f"{len(ia)} items compared, {bad} differ")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
