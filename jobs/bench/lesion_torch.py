#!/usr/bin/python3
"""lesion_torch.py: the PyTorch side of jobs/bench_lesion.sh.

    lesion_torch.py make DIR --layers L --heads H --embd E --vocab V --positions P [--seed S]
        a GPT-2-architecture folder of random weights (std 0.02, LayerNorm weights 1): config.json
        and model.safetensors (F32, Hugging Face keys without prefix), written tensor by tensor
        (memory: one tensor at a time)
    lesion_torch.py run DIR TOKENS [--position -2] [--layers N] [--json OUT]
        seed 002's demo 3 for every (layer, head): float32 torch, a GPT-2 module spelled out as
        Hugging Face's (Conv1D c_attn / c_proj, gelu tanh, tied output), a forward pre-hook on
        h[l].attn.c_proj that zeroes head h's slice at `position`, and one whole forward pass per
        lesion with the logits of every position, as the seed does. Prints timings; --json as
        lesion_reference.py.
torch's default thread count unless BENCH_TORCH_THREADS is set.
"""
import argparse
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

if os.environ.get("BENCH_TORCH_THREADS", ""):
    torch.set_num_threads(int(os.environ["BENCH_TORCH_THREADS"]))


def gpt2_shapes(L, E, V, P):
    s = [("wte.weight", (V, E)), ("wpe.weight", (P, E))]
    for l in range(L):
        p = f"h.{l}."
        s += [(p + "ln_1.weight", (E,)), (p + "ln_1.bias", (E,)), (p + "attn.c_attn.weight", (E, 3 * E)),
              (p + "attn.c_attn.bias", (3 * E,)), (p + "attn.c_proj.weight", (E, E)), (p + "attn.c_proj.bias", (E,)),
              (p + "ln_2.weight", (E,)), (p + "ln_2.bias", (E,)), (p + "mlp.c_fc.weight", (E, 4 * E)),
              (p + "mlp.c_fc.bias", (4 * E,)), (p + "mlp.c_proj.weight", (4 * E, E)), (p + "mlp.c_proj.bias", (E,))]
    return s + [("ln_f.weight", (E,)), ("ln_f.bias", (E,))]


def make(a):
    os.makedirs(a.dir, exist_ok=True)
    cfg = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "activation_function": "gelu_new",
           "n_layer": a.layers, "n_head": a.heads, "n_embd": a.embd, "n_positions": a.positions,
           "vocab_size": a.vocab, "layer_norm_epsilon": 1e-5, "n_inner": None}
    with open(os.path.join(a.dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    shapes = gpt2_shapes(a.layers, a.embd, a.vocab, a.positions)
    hdr, off = {}, 0
    for k, s in shapes:
        n = 4 * math.prod(s)
        hdr[k] = {"dtype": "F32", "shape": list(s), "data_offsets": [off, off + n]}
        off += n
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    gen = torch.Generator().manual_seed(a.seed)
    with open(os.path.join(a.dir, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for k, s in shapes:
            if k.endswith("ln_1.weight") or k.endswith("ln_2.weight") or k == "ln_f.weight":
                t = torch.ones(s)
            elif k.endswith(".bias"):
                t = torch.zeros(s)
            else:
                t = 0.02 * torch.randn(s, generator=gen)
            f.write(t.numpy().tobytes())
    print(f"wrote {a.dir}: {off / 1e9:.2f} GB of F32 weights, {off // 4 / 1e6:.0f} M parameters")


def load_weights(d):
    path = os.path.join(d, "model.safetensors")
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
    w = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        assert v["dtype"] == "F32", "the benchmark writes F32"
        a, b = v["data_offsets"]
        arr = np.fromfile(path, dtype=np.float32, count=(b - a) // 4, offset=8 + n + a)
        kk = k[len("transformer."):] if k.startswith("transformer.") else k
        w[kk] = torch.from_numpy(arr).reshape(v["shape"])
    return w


class Conv1D(nn.Module):   # Hugging Face's: x @ W + b, W (in, out)
    def __init__(self, w, b):
        super().__init__()
        self.weight, self.bias = nn.Parameter(w, requires_grad=False), nn.Parameter(b, requires_grad=False)

    def forward(self, x):
        size_out = x.size()[:-1] + (self.weight.size(-1),)
        return torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight).view(size_out)


class Attention(nn.Module):
    def __init__(self, w, p, H, E):
        super().__init__()
        self.H, self.E, self.d = H, E, E // H
        self.c_attn = Conv1D(w[p + "attn.c_attn.weight"], w[p + "attn.c_attn.bias"])
        self.c_proj = Conv1D(w[p + "attn.c_proj.weight"], w[p + "attn.c_proj.bias"])

    def forward(self, x):
        B, T, _ = x.shape
        q, k, v = self.c_attn(x).split(self.E, dim=2)
        q, k, v = (t.view(B, T, self.H, self.d).transpose(1, 2) for t in (q, k, v))
        s = (q @ k.transpose(-1, -2)) / math.sqrt(self.d)
        mask = torch.ones(T, T, dtype=torch.bool).tril()
        s = s.masked_fill(~mask, torch.finfo(s.dtype).min).softmax(-1)
        y = (s @ v).transpose(1, 2).reshape(B, T, self.E)
        return self.c_proj(y)


class Block(nn.Module):
    def __init__(self, w, l, H, E, eps):
        super().__init__()
        p = f"h.{l}."
        self.ln_1 = nn.LayerNorm(E, eps=eps)
        self.ln_2 = nn.LayerNorm(E, eps=eps)
        for ln, n in ((self.ln_1, "ln_1"), (self.ln_2, "ln_2")):
            ln.weight, ln.bias = (nn.Parameter(w[p + n + s], requires_grad=False) for s in (".weight", ".bias"))
        self.attn = Attention(w, p, H, E)
        self.c_fc = Conv1D(w[p + "mlp.c_fc.weight"], w[p + "mlp.c_fc.bias"])
        self.c_proj = Conv1D(w[p + "mlp.c_proj.weight"], w[p + "mlp.c_proj.bias"])

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        h = self.c_fc(self.ln_2(x))
        h = 0.5 * h * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (h + 0.044715 * torch.pow(h, 3.0))))
        return x + self.c_proj(h)


class GPT2(nn.Module):
    def __init__(self, cfg, w):
        super().__init__()
        E, H = cfg["n_embd"], cfg["n_head"]
        eps = cfg.get("layer_norm_epsilon", 1e-5)
        self.wte, self.wpe = w["wte.weight"], w["wpe.weight"]
        self.h = nn.ModuleList([Block(w, l, H, E, eps) for l in range(cfg["n_layer"])])
        self.ln_f = nn.LayerNorm(E, eps=eps)
        self.ln_f.weight, self.ln_f.bias = (nn.Parameter(w["ln_f" + s], requires_grad=False)
                                            for s in (".weight", ".bias"))

    def forward(self, tok):   # tok (1, T) -> logits (1, T, V)
        x = self.wte[tok] + self.wpe[:tok.shape[1]]
        for b in self.h:
            x = b(x)
        return self.ln_f(x) @ self.wte.T


def run(a):
    t0 = time.time()
    cfg = json.load(open(os.path.join(a.dir, "config.json")))
    model = GPT2(cfg, load_weights(a.dir)).eval()
    tokens = torch.tensor([[int(t) for t in open(a.tokens).read().split()]])
    n_tokens = tokens.shape[1]
    n_heads, n_embd = cfg["n_head"], cfg["n_embd"]
    head_dim = n_embd // n_heads
    pos = a.position % n_tokens
    tgt = int(tokens[0, pos + 1])
    L = cfg["n_layer"] if a.layers is None else min(a.layers, cfg["n_layer"])
    t_load = time.time() - t0
    t0 = time.time()
    with torch.no_grad():
        outputs_clean = model(tokens)
    log_smax_clean = F.log_softmax(outputs_clean[0, pos, :], dim=-1)
    clean = log_smax_clean[tgt].item()
    t_clean = time.time() - t0
    t0 = time.time()
    delta = np.zeros((L, n_heads))
    for layeri in range(L):
        for headi in range(n_heads):
            def hook2ablate(module, inp, headi=headi):   # the seed's pre-hook, any head and position
                head_tensor = inp[0].view(1, n_tokens, n_heads, head_dim)
                head_tensor[:, pos, headi, :] = 0
                return (head_tensor.view(1, n_tokens, n_embd),) + tuple(inp[1:])
            hh = model.h[layeri].attn.c_proj.register_forward_pre_hook(hook2ablate)
            with torch.no_grad():
                outputs_ablated = model(tokens)
            hh.remove()
            log_smax = F.log_softmax(outputs_ablated[0, pos, :], dim=-1)
            delta[layeri, headi] = log_smax[tgt].item() - clean
    t_les = time.time() - t0
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; L {cfg['n_layer']}, H {n_heads}, "
          f"E {n_embd}, V {cfg['vocab_size']}; tokens {n_tokens}, position {pos}, target {tgt}, clean {clean:.6f}")
    print(f"load {t_load:.3f} s, clean pass {t_clean:.3f} s, {L * n_heads} lesions {t_les:.3f} s = "
          f"{1e3 * t_les / (L * n_heads):.2f} ms per lesion")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"position": pos, "target_token": tgt, "logprob_clean": clean, "delta_logprob": delta.tolist(),
                       "top5_clean": log_smax_clean.topk(5).indices.tolist()}, f)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("dir")
    for k in ("layers", "heads", "embd", "vocab", "positions"):
        m.add_argument("--" + k, type=int, required=True)
    m.add_argument("--seed", type=int, default=0)
    r = sub.add_parser("run")
    r.add_argument("dir")
    r.add_argument("tokens")
    r.add_argument("--position", type=int, default=-2)
    r.add_argument("--layers", type=int, default=None)
    r.add_argument("--json")
    a = ap.parse_args()
    make(a) if a.cmd == "make" else run(a)


if __name__ == "__main__":
    main()
