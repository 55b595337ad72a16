#!/usr/bin/python3
"""make_inputs.py KIND OUT [options]: random but realistic float32 benchmark inputs, saved with
torch.save (and, with --npy, a .npy copy of the same values beside each .pt).

  qk     OUT=qk_mean.pt            --shape L H T    mean QK scores: N(0,1)-ish per head, plus a
                                                    position bias (recent keys score higher) and a
                                                    raised diagonal
  probs  OUT=attention_probs_mean.pt --shape L H T  causal softmax of random scores with an
                                                    ALiBi-like distance penalty (upper triangle 0)
  jacobian OUT=jacobian.pt         --shape L B H T  {"attn": causal softmax (L,B,H,T,T),
                                                    "grad": dL/dA ~ N(0, 1e-3) (L,B,H,T,T)}
  acts   OUT=folder                --shape L T D    q_acts.pt, k_acts.pt, v_acts.pt (L,T,D):
                                                    per-channel scales, a few outlier channels,
                                                    K with a per-channel offset, token 0 a sink

Tensors are made one layer at a time into one preallocated tensor (peak = the tensor + one layer).
"""
import argparse
import os
import sys
import time

import numpy as np
import torch


def causal_softmax(scores):
    T = scores.shape[-1]
    mask = torch.ones(T, T, dtype=torch.bool).triu(1)
    return torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1)


def dist(T):
    i = torch.arange(T, dtype=torch.float32).view(T, 1)
    j = torch.arange(T, dtype=torch.float32).view(1, T)
    return (i - j)


def make_qk(L, H, T, g):
    x = torch.empty(L, H, T, T)
    d = dist(T).clamp(min=0) / T
    slopes = torch.tensor([2.0 ** (-8.0 * (h + 1) / H) for h in range(H)]).view(H, 1, 1)
    eye = torch.eye(T)
    for l in range(L):
        scale = 0.6 + 0.8 * torch.rand(H, 1, 1, generator=g)
        x[l] = torch.randn(H, T, T, generator=g) * scale - 4.0 * slopes * T / 16 * d + 0.8 * eye
    return x


def make_probs(L, H, T, g):
    x = torch.empty(L, H, T, T)
    d = dist(T)
    slopes = torch.tensor([2.0 ** (-8.0 * (h + 1) / H) for h in range(H)]).view(H, 1, 1)
    for l in range(L):
        x[l] = causal_softmax(torch.randn(H, T, T, generator=g) * 1.5 - slopes * d)
    return x


def make_jacobian(L, B, H, T, g):
    a = torch.empty(L, B, H, T, T)
    gr = torch.empty(L, B, H, T, T)
    for l in range(L):
        a[l] = causal_softmax(torch.randn(B, H, T, T, generator=g) * 1.5)
        gr[l] = torch.randn(B, H, T, T, generator=g) * 1e-3
    return {"attn": a, "grad": gr}


def make_acts(L, T, D, g):
    out = {}
    for name, off in (("q", 0.0), ("k", 0.3), ("v", 0.0)):
        x = torch.empty(L, T, D)
        for l in range(L):
            scale = torch.exp(0.4 * torch.randn(D, generator=g)) * (0.5 if name == "v" else 0.9)
            out_ch = torch.randint(0, D, (max(D // 512, 1),), generator=g)
            scale[out_ch] *= 6.0
            shift = off * torch.randn(D, generator=g)
            x[l] = torch.randn(T, D, generator=g) * scale + shift
            x[l, 0] *= 8.0       # the attention sink token
        out[name] = x
    return out


def save(obj, path, npy):
    t0 = time.time()
    torch.save(obj, path)
    if npy:
        if isinstance(obj, dict):
            for k, v in obj.items():
                np.save(os.path.join(os.path.dirname(path), k + ".npy"), v.numpy())
        else:
            np.save(os.path.splitext(path)[0] + ".npy", obj.numpy())
    print(f"  wrote {path}{' (+ .npy)' if npy else ''} in {time.time() - t0:.1f} s", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=("qk", "probs", "jacobian", "acts"))
    ap.add_argument("out")
    ap.add_argument("--shape", type=int, nargs="+", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--npy", action="store_true", help="also write .npy copies of the same values")
    a = ap.parse_args()
    torch.set_num_threads(max(os.cpu_count() or 1, 1))
    g = torch.Generator().manual_seed(a.seed)
    t0 = time.time()
    if a.kind == "qk":
        save(make_qk(*a.shape, g), a.out, a.npy)
    elif a.kind == "probs":
        save(make_probs(*a.shape, g), a.out, a.npy)
    elif a.kind == "jacobian":
        save(make_jacobian(*a.shape, g), a.out, a.npy)
    else:
        os.makedirs(a.out, exist_ok=True)
        acts = make_acts(*a.shape, g)
        for name in "qkv":
            save(acts[name], os.path.join(a.out, f"{name}_acts.pt"), a.npy)
            acts[name] = None
    print(f"  {a.kind} {tuple(a.shape)} made in {time.time() - t0:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
