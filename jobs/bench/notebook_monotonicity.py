#!/usr/bin/python3
"""notebook_monotonicity.py DATA_PATH MODEL_NAME SEQUENCE_LENGTH: the computing cells of seed 001
("Attention Monotone") for one model, transcribed as they are: load attention_probs_mean.pt as
float64, add the ALiBi scores, causal masked_fill + softmax, mean over heads, cumsum, and the
per-layer loop over all triu pairs (i<j) x columns.
einops is not in Debian: einops.rearrange("h -> h 1 1") / ("n -> n 1") / ("n -> 1 n") are written
as .view(...), einops.repeat("h i j -> l h i j") as .expand(...) (einops' torch backend also
returns an expanded view), einops.reduce(..., "l h i j -> l i j", "mean") as .mean(dim=1).
Left out: the plots. An allocation failure exits with 99 (the bench reports it as OOM).
"""
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

if os.environ.get("BENCH_TORCH_THREADS", ""):
    torch.set_num_threads(int(os.environ["BENCH_TORCH_THREADS"]))

data_path = sys.argv[1]
model_names = [sys.argv[2]]
sequence_length = int(sys.argv[3])


@dataclass
class LayerStats:
    combinations: int = 0
    violations_count: int = 0
    total_absolute_error: float = 0.0
    total_relative_error: float = 0.0
    violation_rate: float = 0.0
    absolute_error: float = 0.0
    absolute_error_std: float = 0.0
    relative_error: float = 0.0
    relative_error_std: float = 0.0


def compute_alibi_slopes(n_heads):
    return torch.tensor(
        [pow(2, -8 * (h + 1) / n_heads) for h in range(n_heads)],
        dtype=torch.float64,
    )


def compute_alibi_scores(n_layers, n_heads):
    head_alphas = compute_alibi_slopes(n_heads).view(n_heads, 1, 1)     # h -> h 1 1
    i = torch.arange(sequence_length, dtype=torch.float64).view(-1, 1)  # n -> n 1
    j = torch.arange(sequence_length, dtype=torch.float64).view(1, -1)  # n -> 1 n
    distances = i - j
    scores = -head_alphas * distances
    return scores.unsqueeze(0).expand(n_layers, *scores.shape)          # h i j -> l h i j


def load_attention_matrix(model_name):
    result_dir = Path(data_path) / model_name / str(sequence_length)
    mean_attention_matrix = torch.load(result_dir / "attention_probs_mean.pt").to(torch.float64)
    n_layers, n_heads, _, _ = mean_attention_matrix.shape
    mean_attention_matrix += compute_alibi_scores(n_layers=n_layers, n_heads=n_heads)
    return mean_attention_matrix


def compute_softmax_attention(attention_matrix):
    masked_attention_matrix = attention_matrix.masked_fill(
        ~torch.ones_like(attention_matrix, dtype=torch.bool).tril(),
        float("-inf"),
    )
    softmax_attention_matrix = torch.nn.functional.softmax(masked_attention_matrix, dim=-1)
    softmax_attention_matrix = softmax_attention_matrix.mean(dim=1)     # l h i j -> l i j
    return softmax_attention_matrix


def compute_monotonicity_stats(attention_matrix):
    n_layers, seq_len, _ = attention_matrix.shape
    cumsum = attention_matrix.cumsum(dim=-1)
    all_layer_stats = []
    i_indices, j_indices = torch.triu_indices(seq_len, seq_len, offset=1, device=attention_matrix.device)
    num_pairs = i_indices.shape[0]
    total_combinations = num_pairs * seq_len
    epsilon = 1e-10
    for layer_idx in range(n_layers):
        layer_i = cumsum[layer_idx, i_indices]
        layer_j = cumsum[layer_idx, j_indices]
        diff = layer_i - layer_j
        violating_positions = diff < -epsilon
        violations_count = int(violating_positions.sum().item())
        total_absolute_error = 0.0
        total_relative_error = 0.0
        absolute_error_std = 0.0
        relative_error_std = 0.0
        if violations_count > 0:
            violating_diff = diff[violating_positions]
            absolute_errors = violating_diff.abs()
            total_absolute_error = absolute_errors.sum().item()
            if violations_count > 1:
                absolute_error_std = absolute_errors.std().item()
            val_i = layer_i[violating_positions]
            val_j = layer_j[violating_positions]
            relative_errors = absolute_errors / (torch.max(val_i, val_j) + 1e-5)
            total_relative_error = relative_errors.sum().item()
            if violations_count > 1:
                relative_error_std = relative_errors.std().item()
        all_layer_stats.append(LayerStats(
            combinations=total_combinations,
            violations_count=violations_count,
            total_absolute_error=total_absolute_error,
            total_relative_error=total_relative_error,
            violation_rate=violations_count / max(total_combinations, 1),
            absolute_error=total_absolute_error / max(violations_count, 1),
            absolute_error_std=absolute_error_std,
            relative_error=total_relative_error / max(violations_count, 1),
            relative_error_std=relative_error_std,
        ))
    return all_layer_stats


try:
    all_models_stats = {}
    for model_name in model_names:
        print(f"Processing model: {model_name}")
        mean_attention_matrix = load_attention_matrix(model_name)
        softmax_mean_attention_matrix = compute_softmax_attention(mean_attention_matrix)
        all_layer_stats = compute_monotonicity_stats(softmax_mean_attention_matrix)
        all_models_stats[model_name] = all_layer_stats
    for s in all_models_stats[model_names[0]]:
        print(s)
except (MemoryError, RuntimeError) as e:
    if isinstance(e, MemoryError) or "allocate" in str(e) or "memory" in str(e).lower():
        print(f"OOM: {str(e)[:200]}", file=sys.stderr)
        sys.exit(99)
    raise
