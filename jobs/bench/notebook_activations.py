#!/usr/bin/python3
"""notebook_activations.py DATA_DIR N_HEADS: the per-layer loops of seed 002 (the activations
tutorial), demo 1 (Q/K/V histograms over linspace(-5,5,101) and variances, tokens 1:) and demo 2
(full-width QK^T / sqrt(head_dim), its 20-bin histogram, the softmax's 20-bin histogram, mean and
std), float32 torch as written. The tutorial's activations[f'L{l}_qvk'] (1, T, 3D) split into q, k,
v (views) is here q_acts.pt, k_acts.pt, v_acts.pt (L, T, D) loaded with torch.load, layer l taken
as the view X[l:l+1] (1, T, D). Left out: the model forward pass, the plots, demo 3 (needs a model).
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

if os.environ.get("BENCH_TORCH_THREADS", ""):
    torch.set_num_threads(int(os.environ["BENCH_TORCH_THREADS"]))

data_dir = sys.argv[1]
n_heads = int(sys.argv[2])
Q = torch.load(os.path.join(data_dir, "q_acts.pt"))
K = torch.load(os.path.join(data_dir, "k_acts.pt"))
V = torch.load(os.path.join(data_dir, "v_acts.pt"))
n_layers, n_tokens, n_embd = Q.shape
head_dim = n_embd // n_heads
sqrtD = torch.sqrt(torch.tensor(head_dim))


def split(layeri):   # torch.split(activations[f'L{layeri}_qvk'], n_embd, dim=-1)
    return Q[layeri:layeri + 1], K[layeri:layeri + 1], V[layeri:layeri + 1]


# ---- demo 1
binEdges = np.linspace(-5, 5, 101)
Qhist = np.zeros((n_layers, len(binEdges) - 1))
Khist = np.zeros((n_layers, len(binEdges) - 1))
Vhist = np.zeros((n_layers, len(binEdges) - 1))
variances = np.zeros((n_layers, 3))
for layeri in range(n_layers):
    q, k, v = split(layeri)
    Qhist[layeri, :] = np.histogram(q[0, 1:, :].flatten().numpy(), bins=binEdges, density=True)[0]
    Khist[layeri, :] = np.histogram(k[0, 1:, :].flatten().numpy(), bins=binEdges, density=True)[0]
    Vhist[layeri, :] = np.histogram(v[0, 1:, :].flatten().numpy(), bins=binEdges, density=True)[0]
    variances[layeri, 0] = torch.var(q[0, 1:, :]).item()
    variances[layeri, 1] = torch.var(k[0, 1:, :]).item()
    variances[layeri, 2] = torch.var(v[0, 1:, :]).item()

# ---- demo 2
meenz = np.zeros(n_layers)
stdz = np.zeros(n_layers)
for layeri in range(n_layers):
    q, k, v = split(layeri)
    qkt = q[0, 1:, :] @ k[0, 1:, :].transpose(-2, -1)
    attn_acts = qkt / sqrtD
    y, x = np.histogram(attn_acts.flatten(), 20, density=True)
    y, x = np.histogram(F.softmax(attn_acts, dim=-1).flatten(), 20, density=True)
    meenz[layeri] = attn_acts.mean()
    stdz[layeri] = attn_acts.std()

print("variances", variances.tolist())
print("means", meenz.tolist())
print("stds", stdz.tolist())
