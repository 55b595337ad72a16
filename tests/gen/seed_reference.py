#!/usr/bin/python3
# Copied unchanged (apart from this comment) from /work/shared/oracle/seed_reference.py so the
# tests can run without /work/shared. Do not edit: re-copy it if the oracle changes.
"""Reference values for the attention statistics, computed the way the
original analysis notebooks compute them (PyTorch, float64 where they use it).

It reads one model directory laid out as <dir>/qk_mean.pt,
<dir>/attention_probs_mean.pt and, when present, <dir>/jacobian.pt
({"attn": (L,B,H,T,T), "grad": (L,B,H,T,T)}) and <dir>/{q,k,v}_acts.pt
((L,T,D) each), and prints one JSON document to stdout.

Needs Debian's python3-torch (run it with /usr/bin/python3).

    seed_reference.py MODEL_DIR [--stages histsim,monotonicity,jacobian,patterns,activations]
                               [--quantile exact|sampled] [--sample-seed N] [--max-samples N]
                               [--head-dim N] [--mono-input FILE] [--mono-scale S]
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch


def tolist(t):
    return t.detach().cpu().double().numpy().tolist() if torch.is_tensor(t) else t


# ---------------------------------------------------------------- histsim
def quantile_f32(sorted_vals, q):
    """torch.quantile(x, q) with linear interpolation, in float32 as torch
    does it: rank = q * (n - 1) in float32, weight = rank - floor(rank),
    torch.lerp's two-sided formula."""
    f = np.float32
    n = sorted_vals.size
    rank = f(f(q) * f(n - 1))
    lo = int(rank)
    hi = int(np.ceil(rank))
    w = f(rank - f(lo))
    a, b = f(sorted_vals[lo]), f(sorted_vals[hi])
    if abs(w) < 0.5:
        return f(a + f(w * f(b - a)))
    return f(b - f(f(b - a) * f(f(1.0) - w)))


def linspace_f32(lo, hi, steps):
    """torch.linspace in float32 as torch >= 2.1 computes it on the CPU:
    step = (hi - lo) / (steps - 1); the first half counts up from lo, the
    second half down from hi; every operation rounded to float32, no FMA."""
    f = np.float32
    step = f(f(f(hi) - f(lo)) / f(steps - 1))
    half = steps // 2
    return np.array([f(f(lo) + f(step * f(k))) if k < half else f(f(hi) - f(step * f(steps - k - 1)))
                     for k in range(steps)], dtype=np.float32)


def histogram_bins(values, mode, max_samples, sample_seed, n_edges=200):
    """Edges from the 0.5% and 99.5% quantiles.  'sampled' is the notebook's
    method (a random subset of at most max_samples values, here from a seeded
    generator); 'exact' uses every value."""
    all_vals = values.reshape(-1).float()
    sampled = False
    if mode == "sampled" and all_vals.numel() > max_samples:
        g = torch.Generator().manual_seed(sample_seed)
        all_vals = all_vals[torch.randperm(all_vals.numel(), generator=g)[:max_samples]]
        sampled = True
    s = np.sort(all_vals.numpy())
    vmin, vmax = quantile_f32(s, 0.005), quantile_f32(s, 0.995)
    return torch.from_numpy(linspace_f32(vmin, vmax, n_edges)), sampled


def hist_probs(values, bins, eps=1e-12):
    n_bins = bins.numel() - 1
    idx = torch.bucketize(values, bins, right=False) - 1
    valid = (idx >= 0) & (idx < n_bins)
    idx = idx.masked_fill(~valid, 0)
    counts = torch.zeros(*values.shape[:-1], n_bins, dtype=torch.float64)
    ones = torch.ones_like(idx, dtype=counts.dtype).masked_fill(~valid, 0)
    counts.scatter_add_(-1, idx, ones)
    probs = counts + eps
    return probs / probs.sum(dim=-1, keepdim=True)


def within_similarity(p):
    ent = -(p * torch.log(p)).sum(dim=-1)
    return 1.0 - ent / torch.log(torch.tensor(p.shape[-1], dtype=torch.float64))


def js_dissimilarity(p, q, eps=1e-12):
    p = p + eps
    q = q + eps
    p = p / p.sum(dim=-1, keepdim=True)
    q = q / q.sum(dim=-1, keepdim=True)
    m = 0.5 * (p + q)
    return 0.5 * ((p * torch.log(p / m)).sum(dim=-1) + (q * torch.log(q / m)).sum(dim=-1))


def histsim(qk_mean, mode, max_samples, sample_seed):
    L, H, T, _ = qk_mean.shape
    bins, sampled = histogram_bins(qk_mean, mode, max_samples, sample_seed)
    diag = qk_mean.diagonal(dim1=-2, dim2=-1)
    lower_mask = torch.tril(torch.ones(T, T), diagonal=-1).bool()
    lower = qk_mean[..., lower_mask]
    pd, pl = hist_probs(diag, bins), hist_probs(lower, bins)
    return {
        "bins": tolist(bins),
        "sampled": sampled,
        "within_diag": tolist(within_similarity(pd)),
        "within_lower": tolist(within_similarity(pl)),
        "js_similarity": tolist(1.0 - js_dissimilarity(pd, pl)),
        "mean_diag": tolist(diag.mean(dim=-1)),
        "mean_lower": tolist(lower.mean(dim=-1)),
        "mean_diagonal": diag.mean().item(),
        "mean_off_diagonal": lower.mean().item(),
    }


# ----------------------------------------------------------- monotonicity
def alibi_slopes(n_heads):
    return torch.tensor([pow(2, -8 * (h + 1) / n_heads) for h in range(n_heads)], dtype=torch.float64)


def monotonicity(probs_mean, epsilon=1e-10):
    x = probs_mean.to(torch.float64)
    L, H, T, _ = x.shape
    i = torch.arange(T, dtype=torch.float64).view(T, 1)
    j = torch.arange(T, dtype=torch.float64).view(1, T)
    x = x + (-alibi_slopes(H).view(H, 1, 1) * (i - j)).unsqueeze(0)
    x = x.masked_fill(~torch.ones_like(x, dtype=torch.bool).tril(), float("-inf"))
    a = torch.softmax(x, dim=-1).mean(dim=1)
    cumsum = a.cumsum(dim=-1)
    ii, jj = torch.triu_indices(T, T, offset=1)
    combos = ii.shape[0] * T
    out = {k: [] for k in ("combinations", "violations", "violation_rate", "absolute_error",
                           "absolute_error_std", "relative_error", "relative_error_std")}
    for l in range(L):
        ci, cj = cumsum[l, ii], cumsum[l, jj]
        diff = ci - cj
        v = diff < -epsilon
        n = int(v.sum().item())
        ae = aes = re = res = 0.0
        if n > 0:
            abs_err = diff[v].abs()
            rel_err = abs_err / (torch.max(ci[v], cj[v]) + 1e-5)
            ae, re = abs_err.sum().item() / n, rel_err.sum().item() / n
            if n > 1:
                aes, res = abs_err.std().item(), rel_err.std().item()
        out["combinations"].append(combos)
        out["violations"].append(n)
        out["violation_rate"].append(n / max(combos, 1))
        out["absolute_error"].append(ae)
        out["absolute_error_std"].append(aes)
        out["relative_error"].append(re)
        out["relative_error_std"].append(res)
    out["alibi_slopes"] = tolist(alibi_slopes(H))
    return out


# --------------------------------------------------------------- jacobian
def jacobian(attn, grad):
    """attn, grad: (L, B, H, T, T).  Per layer and head, as the softmax
    Jacobian script does it (float32 unless the inputs are float64)."""
    L, B, H, T, _ = attn.shape
    keys = ("a_mean", "entropy", "r_diag", "r_offdiag", "cos_diag", "cos_ste")
    out = {k: [[0.0] * H for _ in range(L)] for k in keys}

    def cos(a, b):
        return torch.nn.functional.cosine_similarity(a.reshape(B, -1), b.reshape(B, -1), dim=-1).mean().item()

    for l in range(L):
        for h in range(H):
            A, g = attn[l, :, h], grad[l, :, h]
            g_full = A * (g - (A * g).sum(dim=-1, keepdim=True))
            g_diag = A * (1 - A) * g
            full_n = (g_full * g_full).sum((-2, -1)).mean()
            diag_n = (g_diag * g_diag).sum((-2, -1)).mean()
            r = (diag_n / (full_n + 1e-12)).item()
            out["a_mean"][l][h] = A[A > 0].mean().item()
            out["entropy"][l][h] = (-(A * (A + 1e-10).log()).sum(-1).mean()).item()
            out["r_diag"][l][h] = r
            out["r_offdiag"][l][h] = 1 - r
            out["cos_diag"][l][h] = cos(g_diag, g_full)
            out["cos_ste"][l][h] = cos(g, g_full)
    return out


# --------------------------------------------------------------- patterns
def patterns(attn):
    """attn: (L, H, T, T) for one prompt.  Layer entropy of the last query row
    of the head-mean pattern, and per-head focus of the last query row."""
    a = attn.double().numpy()
    L, H, T, _ = a.shape
    layer_entropy = []
    for l in range(L):
        row = a[l].mean(axis=0)[-1] + 1e-10
        layer_entropy.append(float(-np.sum(row * np.log(row))))
    he, hm, hf = [], [], []
    for l in range(L):
        he.append([]); hm.append([]); hf.append([])
        for h in range(H):
            row = a[l, h, -1, :]
            he[-1].append(float(-np.sum(row * np.log(row + 1e-10))))
            hm[-1].append(float(np.max(row)))
            hf[-1].append(int(np.argmax(row)))
    return {"layer_entropy": layer_entropy, "head_entropy": he, "head_max_attention": hm,
            "head_focus_position": hf}


# ------------------------------------------------------------ activations
def activations(q, k, v, head_dim):
    """q, k, v: (L, T, D) for one text; token 0 is left out as the tutorial does."""
    edges = np.linspace(-5, 5, 101)
    L = q.shape[0]
    out = {"hist_edges": edges.tolist(), "q_hist": [], "k_hist": [], "v_hist": [],
           "q_var": [], "k_var": [], "v_var": [], "qk_mean": [], "qk_std": []}
    sqrt_d = math.sqrt(head_dim)
    for l in range(L):
        for name, t in (("q", q), ("k", k), ("v", v)):
            x = t[l, 1:, :]
            out[f"{name}_hist"].append(np.histogram(x.flatten().double().numpy(), bins=edges, density=True)[0].tolist())
            out[f"{name}_var"].append(torch.var(x.double()).item())
        qkt = (q[l, 1:, :].double() @ k[l, 1:, :].double().T) / sqrt_d
        out["qk_mean"].append(qkt.mean().item())
        out["qk_std"].append(qkt.std().item())
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("--stages", default="histsim,monotonicity,jacobian,patterns,activations")
    ap.add_argument("--quantile", choices=("exact", "sampled"), default="exact")
    ap.add_argument("--max-samples", type=int, default=1_000_000)
    ap.add_argument("--sample-seed", type=int, default=0)
    ap.add_argument("--head-dim", type=int, default=0, help="for activations; default D / H of qk_mean")
    ap.add_argument("--mono-input", default="attention_probs_mean.pt",
                    help="file in MODEL_DIR whose values are the content scores for monotonicity")
    ap.add_argument("--mono-scale", type=float, default=1.0, help="multiply the content scores by this")
    a = ap.parse_args()
    stages = set(a.stages.split(","))
    d = a.model_dir
    res = {}
    if "histsim" in stages:
        res["histsim"] = histsim(torch.load(os.path.join(d, "qk_mean.pt")), a.quantile, a.max_samples, a.sample_seed)
    if "monotonicity" in stages:
        res["monotonicity"] = monotonicity(torch.load(os.path.join(d, a.mono_input)).double() * a.mono_scale)
    jp = os.path.join(d, "jacobian.pt")
    if os.path.exists(jp) and stages & {"jacobian", "patterns"}:
        j = torch.load(jp)
        if "jacobian" in stages:
            res["jacobian"] = jacobian(j["attn"], j["grad"])
        if "patterns" in stages:
            res["patterns"] = patterns(j["attn"][:, 0])
    if "activations" in stages and os.path.exists(os.path.join(d, "q_acts.pt")):
        q, k, v = (torch.load(os.path.join(d, f"{t}_acts.pt")) for t in "qkv")
        hd = a.head_dim
        if not hd:
            H = torch.load(os.path.join(d, "qk_mean.pt")).shape[1]
            hd = q.shape[-1] // H
        res["activations"] = activations(q, k, v, hd)
    json.dump(res, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
