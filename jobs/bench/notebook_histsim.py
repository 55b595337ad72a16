#!/usr/bin/python3
"""notebook_histsim.py DATA_DIR LOG_FILE: the cells of seed 000 ("Attention Stats") that compute
something, transcribed as they are: torch.load of qk_mean.pt, randperm sampling of 1M values,
torch.quantile, linspace, bucketize + scatter_add histograms, entropies, Jensen-Shannon, means.
Left out: the plots (plot_heatmap writes three 400-dpi PNGs) -- attnstat's `run` draws none either.
"""
import os
import sys
from pathlib import Path

import torch

if os.environ.get("BENCH_TORCH_THREADS", ""):
    torch.set_num_threads(int(os.environ["BENCH_TORCH_THREADS"]))

data_dir = Path(sys.argv[1])
log_file = Path(sys.argv[2])

# ---- cell: load
mean_attention_matrix = torch.load(data_dir / "qk_mean.pt")
n_layers, n_heads, seq_len, _ = mean_attention_matrix.shape
assert n_layers > 0
assert n_heads > 0
assert seq_len > 0

# ---- cell: bins
all_vals = mean_attention_matrix.reshape(-1)
max_samples = 1_000_000
if all_vals.numel() > max_samples:
    all_vals = all_vals[
        torch.randperm(all_vals.numel(), device=all_vals.device)[:max_samples]
    ]
vmin = torch.quantile(all_vals, 0.005)
vmax = torch.quantile(all_vals, 0.995)
bins = torch.linspace(vmin, vmax, steps=200, device=all_vals.device)


# ---- cell: functions
def hist_probs(values, eps: float = 1e-12):
    n_bins = bins.numel() - 1
    idx = torch.bucketize(values, bins, right=False) - 1
    valid = (idx >= 0) & (idx < n_bins)

    idx = idx.masked_fill(~valid, 0)
    counts = torch.zeros(
        *values.shape[:-1],
        n_bins,
        dtype=torch.float64,
        device=values.device,
    )
    ones = torch.ones_like(idx, dtype=counts.dtype)
    ones = ones.masked_fill(~valid, 0)
    counts.scatter_add_(-1, idx, ones)

    probs = counts + eps
    probs = probs / probs.sum(dim=-1, keepdim=True)
    return probs


def within_similarity(p):
    ent = -(p * torch.log(p)).sum(dim=-1)
    ent_norm = ent / torch.log(
        torch.tensor(p.shape[-1], dtype=torch.float64, device=p.device),
    )
    return 1.0 - ent_norm


def print_stats(name, values):
    v = values.detach()
    stats = {
        "min": v.min().item(),
        "max": v.max().item(),
        "mean": v.mean().item(),
        "std": v.std(unbiased=False).item(),
    }
    line = (
        f"{name} | min={stats['min']:.4f} max={stats['max']:.4f} "
        f"mean={stats['mean']:.4f} std={stats['std']:.4f}"
    )
    print(line)
    with log_file.open("a", encoding="utf-8") as f:
        f.write(line + "\n")


def js_dissimilarity(p, q, eps: float = 1e-12):
    p = p + eps
    q = q + eps
    p = p / p.sum(dim=-1, keepdim=True)
    q = q / q.sum(dim=-1, keepdim=True)
    m = 0.5 * (p + q)
    kl_pm = (p * torch.log(p / m)).sum(dim=-1)
    kl_qm = (q * torch.log(q / m)).sum(dim=-1)
    js = 0.5 * (kl_pm + kl_qm)
    return js


# ---- cell: diag / lower
diag = mean_attention_matrix.diagonal(dim1=-2, dim2=-1)
lower_mask = torch.tril(
    torch.ones(seq_len, seq_len, device=mean_attention_matrix.device),
    diagonal=-1,
).bool()
lower = mean_attention_matrix[..., lower_mask]

# ---- cells: within-diagonal, within-lower, JS
diag_similarity = within_similarity(hist_probs(diag))
print_stats("Within-diagonal similarity", diag_similarity)
lower_similarity = within_similarity(hist_probs(lower))
print_stats("Within-lower similarity", lower_similarity)
dissimilarity = js_dissimilarity(hist_probs(diag), hist_probs(lower))
js_similarity = 1.0 - dissimilarity
print_stats("JS similarity", js_similarity)

# ---- cell: mean content
mean_diagonal = diag.mean()
mean_off_diagonal = lower.mean()
print(f"Mean diagonal attention: {mean_diagonal:.4f}")
print(f"Mean off diagonal attention: {mean_off_diagonal:.4f}")
print(f"Difference: {mean_diagonal - mean_off_diagonal:.4f}")

# ---- cell: all content
layer_head_mean_diag = diag.mean(dim=-1)
layer_head_mean_lower = lower.mean(dim=-1)
print(f"Diag: {layer_head_mean_diag.tolist()}")
print(f"Lower: {layer_head_mean_lower.tolist()}")
print(f"Difference: {(layer_head_mean_diag - layer_head_mean_lower).tolist()}")
