#!/usr/bin/python3
"""torch_load.py FILE.pt: torch.load the whole tensor (what every notebook starts with)."""
import sys
import time

import torch

t0 = time.perf_counter()
x = torch.load(sys.argv[1])
dt = time.perf_counter() - t0
n = x.numel() * x.element_size()
print(f"torch.load {tuple(x.shape)} {n / 1e9:.3f} GB in {dt:.3f} s = {n / 1e9 / dt:.2f} GB/s")
