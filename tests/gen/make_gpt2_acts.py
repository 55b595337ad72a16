#!/usr/bin/python3
"""make_gpt2_acts.py: the Q, K, V activations of tests/fixtures/gpt2/trained on its prompt, from
a reference forward pass in float64 torch (the architecture as ../shared/oracle/lesion_reference.py
and tests/gen/make_gpt2_fixtures.py spell it), saved as (L, T, E) float32 .npy files in
tests/fixtures/gpt2/trained_acts/: what a measurement run would save. tests/lesion_pipeline.sh
checks that the activations stage gives the same statistics from the live model (weights: +
prompt:) as from these files.

    /usr/bin/python3 tests/gen/make_gpt2_acts.py
"""
import json
import math
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FX = os.path.join(ROOT, "tests", "fixtures", "gpt2")


def load_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    out = {}
    for k, v in head.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        assert v["dtype"] == "F32", v["dtype"]
        arr = np.frombuffer(raw[8 + n + a:8 + n + b], dtype="<f4").reshape(v["shape"])
        out[k[len("transformer."):] if k.startswith("transformer.") else k] = torch.from_numpy(arr.astype(np.float64))
    return out


def main():
    folder = os.path.join(FX, "trained")
    cfg = json.load(open(os.path.join(folder, "config.json")))
    w = load_safetensors(os.path.join(folder, "model.safetensors"))
    tok = torch.tensor([int(t) for t in open(os.path.join(FX, "tokens_trained.txt")).read().split()])
    H, E, L, T = cfg["n_head"], cfg["n_embd"], cfg["n_layer"], len(tok)
    d, eps = E // H, cfg["layer_norm_epsilon"]
    ln = lambda x, p: F.layer_norm(x, (E,), w[p + ".weight"], w[p + ".bias"], eps)
    x = w["wte.weight"][tok] + w["wpe.weight"][:T]
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    acts = {"q": [], "k": [], "v": []}
    for l in range(L):
        p = f"h.{l}."
        qkv = ln(x, p + "ln_1") @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]
        q, k, v = qkv.split(E, dim=1)                        # (T, E) each, head h in columns h*d..
        for name, t in (("q", q), ("k", k), ("v", v)):
            acts[name].append(t.numpy().astype(np.float32))
        qh, kh, vh = (t.view(T, H, d).transpose(0, 1) for t in (q, k, v))
        a = ((qh @ kh.transpose(1, 2)) / math.sqrt(d)).masked_fill(~mask, float("-inf")).softmax(-1)
        y = (a @ vh).transpose(0, 1).reshape(T, E)
        x = x + y @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
        hdn = ln(x, p + "ln_2") @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"]
        hdn = 0.5 * hdn * (1 + torch.tanh(math.sqrt(2 / math.pi) * (hdn + 0.044715 * hdn ** 3)))
        x = x + hdn @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
    out = os.path.join(FX, "trained_acts")
    os.makedirs(out, exist_ok=True)
    for name, ls in acts.items():
        np.save(os.path.join(out, f"{name}_acts.npy"), np.stack(ls))
    print("wrote", out, np.stack(acts["q"]).shape)


if __name__ == "__main__":
    main()
