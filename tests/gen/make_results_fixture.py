#!/usr/bin/python3
"""Write the results-file fixtures that the `attnstat plot` tests draw from.

    /usr/bin/python3 tests/gen/make_results_fixture.py [--out tests/fixtures/results]

Writes small.h5 (complete) and small_incomplete.h5 (no `complete` attribute, the last units of
one model unfinished, one stage missing), in the layout `attnstat run` writes:

  /                          attrs complete (int64 1; absent when incomplete), tool_version, config
  /models/<name>             one group per model, creation order tracked (= config order);
                             attrs n_layers, n_heads, seq_len (int64), input:<tensor> (path or
                             synthetic spec), datasets `layer` and `head` (dimension scales)
  /models/<name>/<stage>/<field>
                             float64 or int64, (L,), (L, H), (L, n_bins) or per-model; a
                             `description` attribute each, dimensions attached to scales named
                             layer, head, bin, edge

Two models:
  tiny     L=3, H=4, T=24: the real statistics of tests/fixtures/tiny from its reference.json
           (monotonicity from reference_mono_qk.json, which has violations); input:qk_mean is
           tests/fixtures/tiny/qk_mean.npy (relative to the repository root).
  synth-b  L=8, H=6, T=32: made-up but smooth statistics (fixed seed), so every figure has
           structure to show; input:qk_mean is a synthetic spec. These numbers are not the
           statistics of that synthetic model: the fixture tests drawing, not computing.

Deterministic: strings are fixed, values come from the JSON files or a seeded generator.
Variable-length strings are UTF-8 as in attnstat's own files.
"""
import argparse
import json
import math
import os

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
STR = h5py.string_dtype("utf-8")
ORDER = h5py.h5p.CRT_ORDER_TRACKED | h5py.h5p.CRT_ORDER_INDEXED


def new_group(parent, name, track_order=False):
    """A group without timestamps (so the file is byte-for-byte reproducible)."""
    gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
    gcpl.set_obj_track_times(False)
    if track_order:
        gcpl.set_link_creation_order(ORDER)
    return h5py.Group(h5py.h5g.create(parent.id, name.encode(), gcpl=gcpl))

DESCRIPTIONS = {
    "bins": "histogram bin edges shared by all layers and heads",
    "within_diag": "1 - normalised entropy of the histogram of the diagonal scores",
    "within_lower": "1 - normalised entropy of the histogram of the strictly lower-triangle scores",
    "js_similarity": "1 - Jensen-Shannon divergence between the diagonal and lower-triangle histograms",
    "mean_diag": "mean diagonal score",
    "mean_lower": "mean strictly lower-triangle score",
    "combinations": "pairs (i, j > i) times rows compared",
    "violations": "cumulative-attention pairs that decrease",
    "violation_rate": "violations / combinations",
    "absolute_error": "mean |decrease| over the violations",
    "absolute_error_std": "standard deviation of |decrease| over the violations",
    "relative_error": "mean relative decrease over the violations",
    "relative_error_std": "standard deviation of the relative decrease over the violations",
    "a_mean": "mean non-zero attention probability",
    "entropy": "mean attention row entropy (nats)",
    "r_diag": "|diagonal Jacobian part|^2 / |full softmax Jacobian product|^2",
    "r_offdiag": "1 - r_diag",
    "cos_diag": "cosine between the diagonal approximation and the full product",
    "cos_ste": "cosine between the straight-through gradient and the full product",
    "layer_entropy": "entropy of the last query row of the head-mean pattern (nats)",
    "head_entropy": "entropy of the last query row per head (nats)",
    "head_max_attention": "largest attention of the last query row per head",
    "head_focus_position": "argmax of the last query row per head",
    "hist_edges": "activation histogram bin edges",
    "q_hist": "histogram of Q activations", "k_hist": "histogram of K activations",
    "v_hist": "histogram of V activations",
    "q_var": "variance of Q activations", "k_var": "variance of K activations",
    "v_var": "variance of V activations",
    "qk_mean": "mean of per-head q.k/sqrt(d)", "qk_std": "standard deviation of per-head q.k/sqrt(d)",
}

INT_FIELDS = {"combinations", "violations", "head_focus_position"}

STAGES = {
    "histsim": ["bins", "within_diag", "within_lower", "js_similarity", "mean_diag", "mean_lower"],
    "monotonicity": ["combinations", "violations", "violation_rate", "absolute_error",
                     "absolute_error_std", "relative_error", "relative_error_std"],
    "jacobian": ["a_mean", "entropy", "r_diag", "r_offdiag", "cos_diag", "cos_ste"],
    "patterns": ["layer_entropy", "head_entropy", "head_max_attention", "head_focus_position"],
    "activations": ["hist_edges", "q_hist", "k_hist", "v_hist", "q_var", "k_var", "v_var",
                    "qk_mean", "qk_std"],
}


def tiny_stats():
    d = os.path.join(ROOT, "tests", "fixtures", "tiny")
    with open(os.path.join(d, "reference.json")) as f:
        ref = json.load(f)
    with open(os.path.join(d, "reference_mono_qk.json")) as f:
        ref["monotonicity"] = json.load(f)["monotonicity"]
    out = {}
    for stage, fields in STAGES.items():
        out[stage] = {k: np.asarray(ref[stage][k], dtype=np.int64 if k in INT_FIELDS else np.float64)
                      for k in fields}
    return out


def synth_stats(L, H, T, seed):
    rng = np.random.default_rng(seed)
    depth = (np.arange(L) + 0.5) / L
    head = np.arange(H) / max(H - 1, 1)
    dd, hh = np.meshgrid(depth, head, indexing="ij")

    def noise(*shape, s=0.03):
        return rng.normal(0.0, s, size=shape)

    def clip01(a):
        return np.clip(a, 0.0, 1.0)

    s = {k: {} for k in STAGES}
    s["histsim"]["bins"] = np.linspace(-6.0, 6.0, 200)
    s["histsim"]["within_diag"] = clip01(0.25 + 0.5 * dd + 0.15 * np.sin(3.0 * hh + 4.0 * dd) + noise(L, H))
    s["histsim"]["within_lower"] = clip01(0.15 + 0.3 * dd * (1.0 - 0.5 * hh) + noise(L, H))
    s["histsim"]["js_similarity"] = clip01(0.85 - 0.45 * dd * hh - 0.1 * np.cos(5.0 * hh) + noise(L, H))
    s["histsim"]["mean_diag"] = 0.5 - dd + noise(L, H, s=0.2)
    s["histsim"]["mean_lower"] = -0.2 * dd + noise(L, H, s=0.1)

    combos = T * (T - 1) // 2 * T
    rate = 0.004 + 0.02 * depth ** 2 + np.abs(noise(L, s=0.002))
    viol = np.round(rate * combos).astype(np.int64)
    s["monotonicity"]["combinations"] = np.full(L, combos, dtype=np.int64)
    s["monotonicity"]["violations"] = viol
    s["monotonicity"]["violation_rate"] = viol / combos
    s["monotonicity"]["absolute_error"] = 0.002 + 0.01 * depth + np.abs(noise(L, s=0.001))
    s["monotonicity"]["absolute_error_std"] = 0.4 * s["monotonicity"]["absolute_error"]
    s["monotonicity"]["relative_error"] = 0.02 + 0.08 * depth + np.abs(noise(L, s=0.005))
    s["monotonicity"]["relative_error_std"] = 0.3 * s["monotonicity"]["relative_error"]

    s["jacobian"]["a_mean"] = np.full((L, H), 2.0 / (T + 1))
    s["jacobian"]["entropy"] = math.log(T) * (0.5 + 0.4 * dd) + noise(L, H, s=0.05)
    r = clip01(0.45 + 0.35 * hh - 0.2 * dd + noise(L, H))
    s["jacobian"]["r_diag"] = r
    s["jacobian"]["r_offdiag"] = 1.0 - r
    s["jacobian"]["cos_diag"] = clip01(0.75 + 0.2 * np.sqrt(r) + noise(L, H, s=0.01))
    s["jacobian"]["cos_ste"] = clip01(0.3 + 0.3 * hh + noise(L, H))

    s["patterns"]["layer_entropy"] = math.log(T) * (0.6 + 0.3 * depth) + noise(L, s=0.02)
    s["patterns"]["head_entropy"] = math.log(T) * (0.4 + 0.5 * dd * (1.0 - 0.3 * hh)) + noise(L, H, s=0.05)
    s["patterns"]["head_max_attention"] = clip01(0.6 - 0.45 * dd + noise(L, H))
    s["patterns"]["head_focus_position"] = rng.integers(0, T, size=(L, H), dtype=np.int64)

    edges = np.linspace(-5.0, 5.0, 101)
    centres = 0.5 * (edges[:-1] + edges[1:])
    s["activations"]["hist_edges"] = edges
    for i, k in enumerate("qkv"):
        sd = 0.8 + 0.6 * depth + 0.1 * i
        s["activations"][k + "_var"] = sd ** 2
        s["activations"][k + "_hist"] = np.exp(-0.5 * (centres[None, :] / sd[:, None]) ** 2)
    s["activations"]["qk_mean"] = 0.3 * np.sin(4.0 * depth)
    s["activations"]["qk_std"] = 1.5 + depth
    return s


def dims_of(stage, field, arr, L, H):
    if arr.ndim == 2 and arr.shape == (L, H):
        return ("layer", "head")
    if arr.ndim == 2:
        return ("layer", "bin")
    if arr.ndim == 1 and field in ("bins", "hist_edges"):
        return ("edge",)
    return ("layer",)


def write_model(models, name, stats, L, H, T, inputs, unfinished_from=None, skip_stages=()):
    g = new_group(models, name)
    g.attrs["n_layers"] = np.int64(L)
    g.attrs["n_heads"] = np.int64(H)
    g.attrs["seq_len"] = np.int64(T)
    for k, v in inputs.items():
        g.attrs["input:" + k] = np.array(v, dtype=STR)
    scales = {"layer": g.create_dataset("layer", data=np.arange(L, dtype=np.int64), track_times=False),
              "head": g.create_dataset("head", data=np.arange(H, dtype=np.int64), track_times=False)}
    for sc in scales.values():
        sc.make_scale(sc.name.rsplit("/", 1)[1])
    for stage, fields in STAGES.items():
        if stage in skip_stages:
            continue
        sg = new_group(g, stage)
        local = {}
        for field in fields:
            a = np.array(stats[stage][field])
            if unfinished_from is not None and a.shape[:1] == (L,) and field not in ("bins", "hist_edges"):
                a = a.copy()
                a[unfinished_from:] = -1 if a.dtype == np.int64 else np.nan
            fill = -1 if a.dtype == np.int64 else np.nan
            ds = sg.create_dataset(field, data=a, fillvalue=fill, track_times=False)
            ds.attrs["description"] = np.array(DESCRIPTIONS[field], dtype=STR)
            for i, dn in enumerate(dims_of(stage, field, a, L, H)):
                if dn in scales:
                    sc = scales[dn]
                else:
                    key = (dn, a.shape[i])
                    if key not in local:
                        local[key] = sg.create_dataset("_%s%d" % (dn, a.shape[i]),
                                                       data=np.arange(a.shape[i], dtype=np.int64),
                                                       track_times=False)
                        local[key].make_scale(dn)
                    sc = local[key]
                ds.dims[i].attach_scale(sc)


def write_file(path, complete):
    tiny = tiny_stats()
    synth = synth_stats(8, 6, 32, seed=20261126)
    spec = "synthetic:layers=8,heads=6,seq_len=32,batch=2,head_dim=8,seed=7,model=synth-b"
    fcpl = h5py.h5p.create(h5py.h5p.FILE_CREATE)
    fcpl.set_obj_track_times(False)
    fcpl.set_link_creation_order(ORDER)
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5py.h5f.LIBVER_V18, h5py.h5f.LIBVER_V18)
    with h5py.File(h5py.h5f.create(path.encode(), h5py.h5f.ACC_TRUNC, fcpl=fcpl, fapl=fapl)) as f:
        if complete:
            f.attrs["complete"] = np.int64(1)
        f.attrs["tool_version"] = np.array("attnstat 0.1.0 (results fixture)", dtype=STR)
        f.attrs["config"] = np.array("models:\n  - name: tiny\n  - name: synth-b\n"
                                     "stages: {histsim: {}, monotonicity: {}, jacobian: {}, "
                                     "patterns: {}, activations: {}}\n", dtype=STR)
        models = new_group(f, "models", track_order=True)
        write_model(models, "tiny", tiny, 3, 4, 24,
                    {"qk_mean": "tests/fixtures/tiny/qk_mean.npy",
                     "attention_probs_mean": "tests/fixtures/tiny/attention_probs_mean.npy"})
        write_model(models, "synth-b", synth, 8, 6, 32,
                    {"qk_mean": spec, "attention_probs_mean": spec},
                    unfinished_from=None if complete else 5,
                    skip_stages=() if complete else ("jacobian",))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "results"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for name, complete in (("small.h5", True), ("small_incomplete.h5", False)):
        p = os.path.join(a.out, name)
        write_file(p, complete)
        size = os.path.getsize(p)
        print("wrote %s (%d bytes)" % (p, size))
        if size >= 100 * 1024:
            raise SystemExit("%s is %d bytes: keep fixtures under 100 KB" % (p, size))


if __name__ == "__main__":
    main()
