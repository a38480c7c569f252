"""Frozen-feature evaluation: a linear probe and weighted k-NN (the reference has neither).

Linear probe: standardised features, multinomial logistic regression with an L2 penalty, fit
full-batch with L-BFGS from zero weights (a convex problem, so the result is deterministic and
needs no learning-rate tuning). The penalty is chosen among a few values on a held-out part of
the training set, then refit on the whole training set.

k-NN (as in DINO): cosine similarity to the training features, the k nearest vote with weight
exp(similarity / T) for their class.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from .metrics import topk_correct


def accuracy(scores: torch.Tensor, labels: torch.Tensor, ks=(1, 5)) -> dict:
    """Top-k accuracy in percent (k capped at the class count)."""
    hits = topk_correct(scores, labels, ks)
    return {f"top{k}": 100.0 * hits[k].item() / max(len(labels), 1) for k in ks}


@dataclass
class LinearProbe:
    weight: torch.Tensor   # (C, D)
    bias: torch.Tensor     # (C,)
    mean: torch.Tensor     # (D,) feature standardisation from the training set
    std: torch.Tensor

    def __call__(self, features: torch.Tensor) -> torch.Tensor:
        return F.linear((features - self.mean) / self.std, self.weight, self.bias)


def fit_linear_probe(features: torch.Tensor, labels: torch.Tensor, num_classes: int,
                     weight_decay: float, max_iters: int = 200) -> LinearProbe:
    """Minimise mean cross-entropy + weight_decay/2 * ||W||^2 with full-batch L-BFGS."""
    x = features.double()
    mean, std = x.mean(dim=0), x.std(dim=0, unbiased=False).clamp_min(1e-6)
    x = (x - mean) / std
    weight = torch.zeros(num_classes, x.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=max_iters,
                                  tolerance_grad=1e-9, tolerance_change=1e-12,
                                  history_size=20, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(F.linear(x, weight, bias), labels) + \
            0.5 * weight_decay * weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return LinearProbe(weight.detach().float(), bias.detach().float(), mean.float(), std.float())


def holdout_split(num: int, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic (fit indices, held-out indices); at least one of each when num >= 2."""
    order = torch.randperm(num, generator=torch.Generator().manual_seed(seed))
    held = min(max(1, int(round(num * fraction))), num - 1)
    return order[held:], order[:held]


def linear_probe(train_x: torch.Tensor, train_y: torch.Tensor, eval_x: torch.Tensor,
                 eval_y: torch.Tensor, num_classes: int, weight_decays: Sequence[float],
                 holdout_fraction: float = 0.2, max_iters: int = 200, seed: int = 0) -> dict:
    """Choose the L2 penalty on a held-out part of train, refit on all of train, evaluate."""
    sweep = {}
    if len(weight_decays) > 1:
        fit_idx, held_idx = holdout_split(len(train_y), holdout_fraction, seed)
        for wd in weight_decays:
            probe = fit_linear_probe(train_x[fit_idx], train_y[fit_idx], num_classes, wd, max_iters)
            sweep[wd] = accuracy(probe(train_x[held_idx]), train_y[held_idx], ks=(1,))["top1"]
        # Ties go to the strongest penalty (the simpler model).
        chosen = max(sorted(weight_decays, reverse=True), key=lambda wd: sweep[wd])
    else:
        chosen = weight_decays[0]
    probe = fit_linear_probe(train_x, train_y, num_classes, chosen, max_iters)
    return {**accuracy(probe(eval_x), eval_y),
            "train_top1": accuracy(probe(train_x), train_y, ks=(1,))["top1"],
            "weight_decay": chosen,
            "holdout_top1": {str(wd): acc for wd, acc in sweep.items()},
            "num_train": len(train_y), "num_eval": len(eval_y), "num_classes": num_classes}


def knn_scores(train_x: torch.Tensor, train_y: torch.Tensor, query_x: torch.Tensor,
               num_classes: int, k: int = 20, temperature: float = 0.07,
               chunk: int = 1024) -> torch.Tensor:
    """(M, C) class votes: sum over the k most cosine-similar training rows of exp(sim / T)."""
    train = F.normalize(train_x.float(), dim=1)
    k = min(k, len(train_y))
    scores = []
    for start in range(0, len(query_x), chunk):
        query = F.normalize(query_x[start:start + chunk].float(), dim=1)
        sims, idx = (query @ train.T).topk(k, dim=1)
        votes = torch.zeros(len(query), num_classes)
        votes.scatter_add_(1, train_y[idx], (sims / temperature).exp())
        scores.append(votes)
    return torch.cat(scores)


def knn_classify(train_x: torch.Tensor, train_y: torch.Tensor, eval_x: torch.Tensor,
                 eval_y: torch.Tensor, num_classes: int, k: int = 20,
                 temperature: float = 0.07) -> dict:
    scores = knn_scores(train_x, train_y, eval_x, num_classes, k, temperature)
    return {**accuracy(scores, eval_y), "k": min(k, len(train_y)), "temperature": temperature,
            "num_train": len(train_y), "num_eval": len(eval_y), "num_classes": num_classes}


__all__ = ["LinearProbe", "accuracy", "fit_linear_probe", "holdout_split", "knn_classify",
           "knn_scores", "linear_probe"]
