"""Cheap functions with a known optimum, on which benchmarks/search.py compares
`@hparam_search` (TPE) with `@hparam_random`: each returns its simple regret,
the function's value at the point less its optimum (0 at the optimum, lower
is better).
"""

from __future__ import annotations

import math

# Hartmann6 (Dixon and Szego, 1978), on [0, 1]^6; its minimum is -3.32237,
# at HARTMANN6_ARGMIN.
_ALPHA = [1.0, 1.2, 3.0, 3.2]
_A = [
    [10, 3, 17, 3.5, 1.7, 8],
    [0.05, 10, 17, 0.1, 8, 14],
    [3, 3.5, 1.7, 10, 17, 8],
    [17, 8, 0.05, 10, 0.1, 14],
]
_P = [
    [0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886],
    [0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991],
    [0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650],
    [0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381],
]
HARTMANN6_ARGMIN = (0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573)
HARTMANN6_MIN = -3.32237


def hartmann6(x1: float, x2: float, x3: float, x4: float, x5: float, x6: float) -> float:
    """Hartmann6's value less its minimum."""
    x = (x1, x2, x3, x4, x5, x6)
    value = -sum(
        alpha * math.exp(-sum(a * (xj - p) ** 2 for a, xj, p in zip(row, x, pr, strict=True)))
        for alpha, row, pr in zip(_ALPHA, _A, _P, strict=True)
    )
    return value - HARTMANN6_MIN


#: The log-scaled space: five hparams of a training run, each sampled
#: log-uniformly over the range a practitioner would search.
HPO_SPACE = {
    "lr": (1e-5, 1.0),
    "weight_decay": (1e-7, 1e-1),
    "batch_size": (16.0, 1024.0),
    "one_minus_momentum": (1e-3, 1.0),
    "warmup": (1e-3, 0.5),
}
#: The best validation accuracy the model reaches.
HPO_BEST = 0.95


def hpo(
    lr: float, weight_decay: float, batch_size: float, one_minus_momentum: float, warmup: float
) -> float:
    """A validation error surface shaped like a network's: accuracy falls off
    as a Gaussian bump in log10 of each hparam, and the best learning rate
    moves with the batch size (the square-root scaling rule) and with the
    momentum (the effective step is lr / (1 - momentum)). Returns HPO_BEST
    less the accuracy at the point: 0 at the optimum (batch size 128,
    momentum 0.9, learning rate 3e-3, weight decay 1e-4, warmup 5%)."""
    log = math.log10
    step = log(lr) - log(one_minus_momentum)
    d_lr = step - (log(3e-2) + 0.5 * log(batch_size / 128))
    d_wd = log(weight_decay) - log(1e-4)
    d_bs = log(batch_size) - log(128)
    d_mom = log(one_minus_momentum) - log(0.1)
    d_warmup = log(warmup) - log(0.05)
    spread = 1.0 * d_lr**2 + 0.3 * d_wd**2 + 0.4 * d_bs**2 + 0.4 * d_mom**2 + 0.2 * d_warmup**2
    return HPO_BEST - HPO_BEST * math.exp(-spread)
