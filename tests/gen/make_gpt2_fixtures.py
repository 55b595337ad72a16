#!/usr/bin/python3
"""Make the GPT-2 fixtures of tests/unit/test_model.c: tiny GPT-2-architecture models in the
Hugging Face folder layout, their token files, and the reference values of
../shared/oracle/lesion_reference.py (the seed's head-lesion method, float64 torch).

    /usr/bin/python3 tests/gen/make_gpt2_fixtures.py [--out DIR] [--oracle PATH]

DIR defaults to tests/fixtures/gpt2; --oracle to ../shared/oracle/lesion_reference.py beside the
repository. The tests read only DIR: the oracle is needed here, never by the tests. Deterministic
(one thread, fixed seeds): two runs give byte-identical files with the same torch and CPU.

No Hugging Face library exists here, so the GPT-2 architecture is spelled out in torch exactly as
lesion_reference.py does (pre-LayerNorm blocks, Conv1D weights used as x @ W with W (in, out),
fused c_attn, gelu with the tanh approximation, learned positions, output tied to wte), and the
safetensors files are written by hand (8-byte little-endian header length, JSON header padded
with spaces to a multiple of 8, then the tensors in C order).

Fixtures (folder: config.json + weights):
  random        2 layers, 4 heads, n_embd 32, vocab 64, random weights (std 0.3), F32, no prefix,
                T = 20 random token ids (tokens_random.txt)
  trained       3 layers, 4 heads, n_embd 64, vocab 96 (characters), trained 300 steps on the text
                below, F32, keys with 'transformer.' (plus the unused h.0.attn.bias buffer, as old
                checkpoints have), T = 32 = n_positions (tokens_trained.txt)
  trained_f16   the trained weights as F16, no prefix
  trained_bf16  the trained weights as BF16, 'transformer.' prefix
  trained_shard the trained weights (F32, no prefix) in 2 shards + model.safetensors.index.json
Per fixture NAME: NAME.reference.json (lesion_reference.py's output, position -2) and
NAME.logits.json ({"logits": (T, vocab)} of the clean pass, float64, from the oracle's own
forward()). random.pos3.reference.json: lesion_reference.py --position 3 on random.
"""
import argparse
import importlib.util
import json
import math
import os
import struct
import subprocess
import sys

import torch
import torch.nn.functional as F

torch.set_num_threads(1)
torch.set_num_interop_threads(1)
torch.use_deterministic_algorithms(True)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DEFAULT_ORACLE = os.path.join(os.path.dirname(ROOT), "shared", "oracle", "lesion_reference.py")

TEXT = """The ferry left the harbour at seven every morning, and the same people took it every day.
There was the woman with the green umbrella, who read the newspaper from the last page to the
first. There was the old man who fed the gulls with bread from his pocket, although a sign asked
him not to. There were two students who argued about music and never agreed, and a nurse who slept
with her head against the window until the engine slowed at the far pier.
In winter the crossing was grey and cold, and the spray froze on the rails. In summer the water
was so calm that the boat seemed to stand still while the island came towards it. The captain
said that he could tell the season with his eyes closed, from the smell of the wind alone.
One morning the ferry did not come. The people waited on the pier and looked at their watches.
The woman folded her newspaper, the old man kept his bread, and the students, for once, said
nothing at all. Then the horn sounded behind the lighthouse, and the boat came round the point,
late but whole, and everyone pretended that they had not been worried.
"""

CHARS = [chr(c) for c in range(32, 127)] + ["\n"]   # 96 ids: printable ASCII, then newline
PROMPT = "horn sounded behind the lighthou"           # 32 characters: T = n_positions


def encode(s):
    return [CHARS.index(c) for c in s]


def names(L):
    out = ["wte.weight", "wpe.weight"]
    for l in range(L):
        p = f"h.{l}."
        out += [p + s for s in ("ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias",
                                "attn.c_proj.weight", "attn.c_proj.bias", "ln_2.weight", "ln_2.bias",
                                "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias")]
    return out + ["ln_f.weight", "ln_f.bias"]


def shapes(cfg):
    L, E, V, P = cfg["n_layer"], cfg["n_embd"], cfg["vocab_size"], cfg["n_positions"]
    s = {"wte.weight": (V, E), "wpe.weight": (P, E), "ln_f.weight": (E,), "ln_f.bias": (E,)}
    for l in range(L):
        p = f"h.{l}."
        s.update({p + "ln_1.weight": (E,), p + "ln_1.bias": (E,), p + "ln_2.weight": (E,), p + "ln_2.bias": (E,),
                  p + "attn.c_attn.weight": (E, 3 * E), p + "attn.c_attn.bias": (3 * E,),
                  p + "attn.c_proj.weight": (E, E), p + "attn.c_proj.bias": (E,),
                  p + "mlp.c_fc.weight": (E, 4 * E), p + "mlp.c_fc.bias": (4 * E,),
                  p + "mlp.c_proj.weight": (4 * E, E), p + "mlp.c_proj.bias": (E,)})
    return s


def init_weights(cfg, gen, std):
    w = {}
    for k, shp in shapes(cfg).items():
        if k.endswith("ln_1.weight") or k.endswith("ln_2.weight") or k == "ln_f.weight":
            w[k] = 1.0 + 0.1 * torch.randn(shp, generator=gen)
        elif k.endswith(".bias"):
            w[k] = 0.1 * torch.randn(shp, generator=gen)
        else:
            w[k] = std * torch.randn(shp, generator=gen)
    return w


def forward(cfg, w, tok):
    """lesion_reference.py's forward() (clean pass), batched over dim 0, any float dtype."""
    H, E = cfg["n_head"], cfg["n_embd"]
    d = E // H
    B, T = tok.shape
    eps = cfg["layer_norm_epsilon"]
    ln = lambda x, p: F.layer_norm(x, (E,), w[p + ".weight"], w[p + ".bias"], eps)
    x = w["wte.weight"][tok] + w["wpe.weight"][:T]
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    for l in range(cfg["n_layer"]):
        p = f"h.{l}."
        qkv = ln(x, p + "ln_1") @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]
        q, k, v = (t.view(B, T, H, d).transpose(1, 2) for t in qkv.split(E, dim=2))
        a = ((q @ k.transpose(2, 3)) / math.sqrt(d)).masked_fill(~mask, float("-inf")).softmax(-1)
        y = (a @ v).transpose(1, 2).reshape(B, T, E)
        x = x + y @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
        hdn = ln(x, p + "ln_2") @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"]
        hdn = 0.5 * hdn * (1 + torch.tanh(math.sqrt(2 / math.pi) * (hdn + 0.044715 * hdn ** 3)))
        x = x + hdn @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
    return ln(x, "ln_f") @ w["wte.weight"].T


def train(cfg, steps, seed):
    gen = torch.Generator().manual_seed(seed)
    w = init_weights(cfg, gen, 0.05)
    for t in w.values():
        t.requires_grad_(True)
    opt = torch.optim.Adam(list(w.values()), lr=3e-3)
    data = torch.tensor(encode(TEXT))
    T = cfg["n_positions"]
    loss = None
    for step in range(steps):
        starts = torch.randint(0, len(data) - T - 1, (16,), generator=gen)
        x = torch.stack([data[s:s + T] for s in starts])
        y = torch.stack([data[s + 1:s + T + 1] for s in starts])
        loss = F.cross_entropy(forward(cfg, w, x).reshape(-1, cfg["vocab_size"]), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(f"trained {steps} steps: final loss {loss.item():.3f}", file=sys.stderr)
    return {k: t.detach() for k, t in w.items()}


ST_DTYPE = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}


def write_safetensors(path, tensors):
    """tensors: list of (name, tensor) in file order."""
    hdr, blobs, off = {}, [], 0
    for name, t in tensors:
        t = t.contiguous()
        raw = t.view(torch.int16).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes()
        hdr[name] = {"dtype": ST_DTYPE[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def save_model(folder, cfg, w, dtype, prefix, shards=1, extra=None):
    os.makedirs(folder, exist_ok=True)
    c = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "activation_function": "gelu_new",
         "n_inner": None, **cfg}
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(c, f, indent=2, sort_keys=True)
        f.write("\n")
    items = [(prefix + k, w[k].to(dtype)) for k in names(cfg["n_layer"])]
    if extra:
        items += [(prefix + k, t) for k, t in extra.items()]
    if shards == 1:
        write_safetensors(os.path.join(folder, "model.safetensors"), items)
        return
    per = (len(items) + shards - 1) // shards
    wmap = {}
    for s in range(shards):
        fn = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        part = items[s * per:(s + 1) * per]
        write_safetensors(os.path.join(folder, fn), part)
        wmap.update({k: fn for k, _ in part})
    total = sum(t.numel() * t.element_size() for _, t in items)
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": wmap}, f, indent=2, sort_keys=True)
        f.write("\n")


def load_oracle(path):
    spec = importlib.util.spec_from_file_location("lesion_reference", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def references(oracle_path, oracle, out, name, tokens_file, positions):
    for pos, suffix in positions:
        cmd = [sys.executable, oracle_path, os.path.join(out, name), tokens_file, "--position", str(pos)]
        print("+", " ".join(cmd), file=sys.stderr)
        res = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        with open(os.path.join(out, f"{name}{suffix}.reference.json"), "w") as f:
            f.write(res)
    cfg, w = oracle.load(os.path.join(out, name))
    tok = torch.tensor([int(t) for t in open(tokens_file).read().split()])
    with torch.no_grad():
        logits = oracle.forward(cfg, w, tok)
    with open(os.path.join(out, f"{name}.logits.json"), "w") as f:
        json.dump({"logits": [[float(v) for v in row] for row in logits.tolist()]}, f)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "gpt2"))
    ap.add_argument("--oracle", default=DEFAULT_ORACLE)
    a = ap.parse_args()
    out = a.out
    os.makedirs(out, exist_ok=True)
    oracle = load_oracle(a.oracle)

    cfg_r = {"n_layer": 2, "n_head": 4, "n_embd": 32, "n_positions": 32, "vocab_size": 64,
             "layer_norm_epsilon": 1e-5}
    w_r = init_weights(cfg_r, torch.Generator().manual_seed(17), 0.3)
    save_model(os.path.join(out, "random"), cfg_r, w_r, torch.float32, "")
    tok_r = torch.randint(0, 64, (20,), generator=torch.Generator().manual_seed(5)).tolist()
    with open(os.path.join(out, "tokens_random.txt"), "w") as f:
        f.write(" ".join(map(str, tok_r)) + "\n")

    cfg_t = {"n_layer": 3, "n_head": 4, "n_embd": 64, "n_positions": 32, "vocab_size": 96,
             "layer_norm_epsilon": 1e-5}
    w_t = train(cfg_t, 300, 23)
    P = cfg_t["n_positions"]
    buf = {"h.0.attn.bias": torch.ones(P, P).tril().view(1, 1, P, P)}
    save_model(os.path.join(out, "trained"), cfg_t, w_t, torch.float32, "transformer.", extra=buf)
    save_model(os.path.join(out, "trained_f16"), cfg_t, w_t, torch.float16, "")
    save_model(os.path.join(out, "trained_bf16"), cfg_t, w_t, torch.bfloat16, "transformer.")
    save_model(os.path.join(out, "trained_shard"), cfg_t, w_t, torch.float32, "", shards=2)
    with open(os.path.join(out, "tokens_trained.txt"), "w") as f:
        f.write(" ".join(map(str, encode(PROMPT))) + "\n")

    tr = os.path.join(out, "tokens_random.txt")
    tt = os.path.join(out, "tokens_trained.txt")
    references(a.oracle, oracle, out, "random", tr, [(-2, ""), (3, ".pos3")])
    for name in ("trained", "trained_f16", "trained_bf16", "trained_shard"):
        references(a.oracle, oracle, out, name, tt, [(-2, "")])


if __name__ == "__main__":
    main()
