#!/usr/bin/python3
"""table.py RESULTS.tsv TARGETS.tsv: the benchmark table.

RESULTS rows: case, tool, wall s, peak RSS MB (max over ranks for MPI runs), status (ok, OOM, exitN).
TARGETS rows: case, space-separated key=value (see bench_target in common.sh).
Ratios are notebook / attnstat of the same case (time and RSS).
"""
import sys


def num(x):
    try:
        return float(x)
    except ValueError:
        return float("nan")


def main():
    rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
    targets = {}
    for l in open(sys.argv[2]):
        if l.strip():
            c, spec = l.rstrip("\n").split("\t")
            targets[c] = dict(kv.split("=", 1) for kv in spec.split())
    cases = []
    for r in rows:
        if r[0] not in cases:
            cases.append(r[0])
    ratio_of = {}
    out = []
    for c in cases:
        rs = [r for r in rows if r[0] == c]
        nb = next((r for r in rs if r[1].startswith("notebook")), None)
        nb_ok = nb is not None and nb[4] == "ok"
        for r in sorted(rs, key=lambda r: (not r[1].startswith("notebook"), r[1])):
            case, tool, wall, rss, status = r
            w, m = num(wall), num(rss)
            wall_s = f"{w:.2f}" if status == "ok" else status
            if status == "OOM":
                wall_s = f"OOM ({w:.1f})"
            line = [case, tool, wall_s, f"{m:.0f}" if m == m else "-", "", "", "", ""]
            if not tool.startswith("notebook"):
                t = targets.get(case, {})
                tr, rr = float("nan"), float("nan")
                if nb_ok and status == "ok":
                    tr = num(nb[2]) / w
                    rr = num(nb[3]) / m
                    ratio_of[case] = tr
                line[4] = f"{tr:.1f}x" if tr == tr else ("nb OOM" if nb is not None and nb[4] == "OOM" else "-")
                line[5] = f"{rr:.1f}x" if rr == rr else "-"
                want, ok = [], status == "ok"
                for k, v in t.items():  # every attnstat row of the case is held to them
                    if k == "grow":
                        if v not in ratio_of:  # --case left the reference case out: no target
                            want.append(f"ratio vs {v}: not run")
                            continue
                        ref = ratio_of[v]
                        want.append(f"ratio>{ref:.1f}x (of {v})")
                        ok = ok and tr == tr and ref == ref and tr > ref
                    elif k == "speedup":
                        want.append(f">={v}x")
                        ok = ok and tr == tr and tr >= float(v)
                    elif k == "rss_mb":
                        want.append(f"RSS<={v}MB")
                        ok = ok and m <= float(v)
                    elif k == "rss_frac":
                        lim = num(nb[3]) * float(v) if nb_ok else float("nan")
                        want.append(f"RSS<={v}*nb" + (f"({lim:.0f})" if lim == lim else ""))
                        ok = ok and lim == lim and m <= lim
                    elif k == "wall":
                        want.append(f"wall<={v}s")
                        ok = ok and w <= float(v)
                if want:
                    line[6] = ", ".join(want)
                    line[7] = "PASS" if ok else "FAIL"
                elif status != "ok":
                    line[7] = "FAIL"
            out.append(line)
    head = ["case", "tool", "wall s", "peak RSS MB", "ratio", "RSS ratio", "target", "PASS/FAIL"]
    wd = [max(len(str(x[i])) for x in out + [head]) for i in range(len(head))]
    fmt = "  ".join("{:<%d}" % w for w in wd)
    print(fmt.format(*head))
    print("  ".join("-" * w for w in wd))
    for l in out:
        print(fmt.format(*l))
    oom = [r for r in rows if r[4] == "OOM"]
    for r in oom:
        print(f"note: {r[1]} OOM in case {r[0]} (address space capped; see NB_ULIMIT_KB)")


if __name__ == "__main__":
    main()
