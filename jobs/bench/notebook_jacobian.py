#!/usr/bin/python3
"""notebook_jacobian.py JACOBIAN_PT: the analysis loop of seed 004 (softmax Jacobian), transcribed
as it is, on captured tensors: torch.load of {"attn": (L,B,H,T,T), "grad": (L,B,H,T,T)}, then per
layer and per head g_full, g_diag, energies, cosines, A_mean over A>0, row entropy, one printed
line per head. Left out: training the model and capturing the tensors (the inputs are the file).
"""
import os
import sys

import torch
import torch.nn.functional as F

if os.environ.get("BENCH_TORCH_THREADS", ""):
    torch.set_num_threads(int(os.environ["BENCH_TORCH_THREADS"]))

j = torch.load(sys.argv[1])
attn_all, grad_all = j["attn"], j["grad"]
n_layers = attn_all.shape[0]
attn_data = {f"layer{l:02d}": {"attn": attn_all[l], "grad": grad_all[l]} for l in range(n_layers)}

print(f"\n{'layer':30s} {'A_mean':>8s} {'A_entropy':>10s} {'r_diag':>8s} {'r_offdiag':>10s} "
      f"{'cos_diag':>9s} {'cos_ste':>8s}")
print("-" * 100)
for name, d in sorted(attn_data.items()):
    A = d["attn"]  # (B, n_head, T, T)
    g = d["grad"]  # (B, n_head, T, T) = dL/dA  (attn_ref.grad.detach() in the script)
    B_size, n_head, T, _ = A.shape
    for h in range(n_head):
        A_h = A[:, h, :, :]
        g_h = g[:, h, :, :]
        Ag_sum = (A_h * g_h).sum(dim=-1, keepdim=True)
        g_full = A_h * (g_h - Ag_sum)
        g_diag = A_h * (1 - A_h) * g_h
        g_ste = g_h
        g_full_norm = (g_full * g_full).sum((-2, -1)).mean()
        g_diag_norm = (g_diag * g_diag).sum((-2, -1)).mean()
        diff_norm = ((g_full - g_diag) * (g_full - g_diag)).sum((-2, -1)).mean()

        def cos(a, b):
            af = a.reshape(B_size, -1)
            bf = b.reshape(B_size, -1)
            return F.cosine_similarity(af, bf, dim=-1).mean().item()

        cos_diag = cos(g_diag, g_full)
        cos_ste = cos(g_ste, g_full)
        valid_mask = A_h > 0
        A_valid = A_h[valid_mask]
        A_mean = A_valid.mean().item()
        entropy = -(A_h * (A_h + 1e-10).log()).sum(-1).mean().item()
        r_diag = g_diag_norm / (g_full_norm + 1e-12)
        print(f"{name}.head{h:d} "
              f" {A_mean:8.4f} {entropy:10.3f} {r_diag.item():8.3f} "
              f"{(1-r_diag).item():10.3f} {cos_diag:9.4f} {cos_ste:8.4f}")
