#!/usr/bin/python3
"""Make attnstat's real-model test fixtures and their reference values.

Trains two small causal byte-level ALiBi transformers (pure PyTorch, CPU, one
thread, fixed seeds) on tests/gen/corpus.txt, captures attention statistics on
a few windows of that text, saves them with torch.save (+ .npy copies) and
writes the reference JSONs with tests/gen/seed_reference.py.

    /usr/bin/python3 tests/gen/make_fixtures.py [--out DIR]

DIR defaults to tests/fixtures; it gets DIR/tiny and DIR/tiny12.  Running it
twice gives byte-identical files (checked with --out to a scratch directory
and cmp).  Needs Debian's python3-torch and python3-numpy (torch 1.13).

Fixture models (see tests/fixtures/README.md):
  tiny    3 layers, 4 heads, d_model 32, head_dim 8, T=24, B=4, every file
  tiny12  2 layers, 12 heads, d_model 48, head_dim 4, T=16, B=4,
          qk_mean / attention_probs_mean only
"""
import argparse
import hashlib
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)
torch.set_num_interop_threads(1)
torch.use_deterministic_algorithms(True)

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus.txt")
SEED_REFERENCE = os.path.join(HERE, "seed_reference.py")

CONFIGS = {
    "tiny": dict(seed=1234, n_layers=3, n_heads=4, head_dim=8, mlp_mult=4,
                 train_ctx=64, train_batch=16, steps=400, lr=3e-3,
                 T=24, B=4, full=True),
    "tiny12": dict(seed=4321, n_layers=2, n_heads=12, head_dim=4, mlp_mult=4,
                   train_ctx=64, train_batch=16, steps=300, lr=3e-3,
                   T=16, B=4, full=False),
}
VOCAB = 256  # bytes


def alibi_slopes(n_heads):
    # m_h = 2^(-8(h+1)/H), h = 0..H-1 (the formula of the analyses, any H)
    return torch.tensor([2.0 ** (-8.0 * (h + 1) / n_heads) for h in range(n_heads)],
                        dtype=torch.float32)


class Block(nn.Module):
    def __init__(self, d, n_heads, head_dim, mlp_mult):
        super().__init__()
        self.H, self.hd = n_heads, head_dim
        self.ln1 = nn.LayerNorm(d)
        self.q = nn.Linear(d, d)
        self.k = nn.Linear(d, d)
        self.v = nn.Linear(d, d)
        self.o = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, mlp_mult * d), nn.GELU(), nn.Linear(mlp_mult * d, d))

    def forward(self, x, slopes, rec=None):
        B, T, D = x.shape
        h = self.ln1(x)
        q, k, v = self.q(h), self.k(h), self.v(h)          # (B, T, D)
        split = lambda t: t.view(B, T, self.H, self.hd).transpose(1, 2)  # (B, H, T, hd)
        qh, kh, vh = split(q), split(k), split(v)
        scores = qh @ kh.transpose(-2, -1) / math.sqrt(self.hd)  # content only, (B, H, T, T)
        pos = torch.arange(T, dtype=torch.float32)
        dist = pos.view(T, 1) - pos.view(1, T)                  # i - j
        logits = scores - slopes.view(-1, 1, 1) * dist
        causal = torch.ones(T, T, dtype=torch.bool).tril()
        logits = logits.masked_fill(~causal, float("-inf"))
        probs = torch.softmax(logits, dim=-1)
        if rec is not None:
            if probs.requires_grad:
                probs.retain_grad()
            rec.append(dict(q=q, k=k, v=v, scores=scores, probs=probs))
        out = (probs @ vh).transpose(1, 2).reshape(B, T, D)
        x = x + self.o(out)
        return x + self.mlp(self.ln2(x))


class TinyALiBi(nn.Module):
    def __init__(self, n_layers, n_heads, head_dim, mlp_mult, **_):
        super().__init__()
        d = n_heads * head_dim
        self.emb = nn.Embedding(VOCAB, d)
        self.blocks = nn.ModuleList(Block(d, n_heads, head_dim, mlp_mult) for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, VOCAB, bias=False)
        self.register_buffer("slopes", alibi_slopes(n_heads))

    def forward(self, idx, rec=None):
        x = self.emb(idx)
        for b in self.blocks:
            x = b(x, self.slopes, rec)
        return self.head(self.ln_f(x))


def train(cfg, data):
    torch.manual_seed(cfg["seed"])
    model = TinyALiBi(**cfg)
    gen = torch.Generator().manual_seed(cfg["seed"] + 1)
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    n, ctx = data.numel(), cfg["train_ctx"]
    steps = cfg["steps"]
    for step in range(steps):
        lr = cfg["lr"] * min(1.0, (step + 1) / 20) * 0.5 * (1 + math.cos(math.pi * step / steps))
        for g in opt.param_groups:
            g["lr"] = lr
        starts = torch.randint(0, n - ctx - 1, (cfg["train_batch"],), generator=gen)
        batch = torch.stack([data[s:s + ctx + 1] for s in starts.tolist()])
        logits = model(batch[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), batch[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == steps - 1:
            print(f"  step {step:4d} loss {loss.item():.3f}", file=sys.stderr)
    return model


def save(t, path):
    t = t.detach().to(torch.float32).contiguous().clone()
    torch.save(t, path + ".pt")
    np.save(path + ".npy", np.ascontiguousarray(t.numpy(), dtype=np.float32))


def capture(name, cfg, model, data, out_dir):
    T, B = cfg["T"], cfg["B"]
    # B evenly spaced windows of T+1 bytes; the first starts the corpus
    n = data.numel()
    starts = [i * ((n - T - 1) // B) for i in range(B)]
    batch = torch.stack([data[s:s + T + 1] for s in starts])
    inp, tgt = batch[:, :-1], batch[:, 1:]
    model.eval()
    rec = []
    for p in model.parameters():
        p.requires_grad_(False)
    # the graph must reach the probabilities: make the embedding output require grad
    emb_hook = model.emb.register_forward_hook(lambda m, i, o: o.requires_grad_(True))
    logits = model(inp, rec)
    emb_hook.remove()
    loss = F.cross_entropy(logits.reshape(-1, VOCAB), tgt.reshape(-1))
    loss.backward()
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    scores = torch.stack([r["scores"] for r in rec])            # (L, B, H, T, T)
    probs = torch.stack([r["probs"] for r in rec])
    save(scores.mean(dim=1), os.path.join(d, "qk_mean"))
    save(probs.mean(dim=1), os.path.join(d, "attention_probs_mean"))
    if cfg["full"]:
        grads = torch.stack([r["probs"].grad for r in rec])
        attn = probs.detach().to(torch.float32).contiguous().clone()
        grad = grads.detach().to(torch.float32).contiguous().clone()
        torch.save({"attn": attn, "grad": grad}, os.path.join(d, "jacobian.pt"))
        np.save(os.path.join(d, "attn.npy"), attn.numpy())
        np.save(os.path.join(d, "grad.npy"), grad.numpy())
        for t in "qkv":
            save(torch.stack([r[t][0] for r in rec]), os.path.join(d, f"{t}_acts"))  # (L, T, D)
    print(f"  capture loss {loss.item():.3f}; windows at bytes {starts}", file=sys.stderr)
    return d


def reference(d, cfg):
    def run(args, out):
        with open(os.path.join(d, out), "w") as f:
            subprocess.run([sys.executable, SEED_REFERENCE, d] + args, stdout=f, check=True)
        return json.load(open(os.path.join(d, out)))

    ref = run([] if cfg["full"] else ["--stages", "histsim,monotonicity"], "reference.json")
    scale = 1.0 / math.sqrt(cfg["head_dim"])
    mono = run(["--stages", "monotonicity", "--mono-input", "qk_mean.pt",
                "--mono-scale", repr(scale)], "reference_mono_qk.json")
    return ref["monotonicity"]["violations"], mono["monotonicity"]["violations"], scale


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.normpath(os.path.join(HERE, "..", "fixtures")))
    ap.add_argument("--only", choices=sorted(CONFIGS), action="append")
    a = ap.parse_args()
    with open(CORPUS, "rb") as f:
        data = torch.tensor(list(f.read()), dtype=torch.long)
    t0 = time.time()
    for name in a.only or CONFIGS:
        cfg = CONFIGS[name]
        print(f"{name}: training", file=sys.stderr)
        model = train(cfg, data)
        d = capture(name, cfg, model, data, a.out)
        v_probs, v_qk, scale = reference(d, cfg)
        print(f"  violations per layer: attention_probs_mean {v_probs}, "
              f"qk_mean x {scale!r} {v_qk}", file=sys.stderr)
        if name == "tiny" and not any(v_qk):
            sys.exit("tiny: the qk-scaled monotonicity reference has no violations")
        for fn in sorted(os.listdir(d)):
            with open(os.path.join(d, fn), "rb") as f:
                print(f"  {hashlib.sha256(f.read()).hexdigest()[:16]} {os.path.getsize(os.path.join(d, fn)):8d} {fn}",
                      file=sys.stderr)
    print(f"done in {time.time() - t0:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
