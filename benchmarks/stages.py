"""The two training stages benchmarks/pruning.py sweeps and benchmarks/truth.py
scores: each trains one combination of its grid epoch by epoch on
scikit-learn's bundled digits and yields the validation accuracy after each.

A run is fixed by its seed: the seed draws the train/validation split (450
of the 1,797 images for validation, stratified, scaled on the training part)
and seeds the model and the epochs' shuffles. The first epochs of a longer run
are the same as those of a shorter one, so one 20-epoch run gives the curve
of every shorter budget.

The selecting runs use seeds 0 to 19 (benchmarks/pruning.py); the runs that
give each combination's true quality use seeds from TRUTH_SEED on
(benchmarks/truth.py), so they share no split and no initialisation.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

#: Images kept for validation: accuracy moves in steps of 1/450.
VALIDATION = 450
#: The first seed of the true-quality runs, far from the selecting seeds.
TRUTH_SEED = 10_000

X, Y = load_digits(return_X_y=True)
CLASSES = np.unique(Y)
_SPLITS: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}


def split(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The seed's train/validation split, scaled on its training part."""
    if seed not in _SPLITS:
        x_train, x_val, y_train, y_val = train_test_split(
            X, Y, test_size=VALIDATION, stratify=Y, random_state=seed
        )
        scaler = StandardScaler().fit(x_train)
        _SPLITS[seed] = scaler.transform(x_train), y_train, scaler.transform(x_val), y_val
    return _SPLITS[seed]


def sgd_curve(seed: int, hparams: Mapping[str, object], epochs: int) -> Iterator[float]:
    x_train, y_train, x_val, y_val = split(seed)
    model = SGDClassifier(
        loss=hparams["loss"],
        alpha=hparams["alpha"],
        learning_rate="constant",
        eta0=hparams["eta0"],
        random_state=seed,
    )
    order = np.random.default_rng(seed)
    for _ in range(epochs):
        shuffled = order.permutation(len(y_train))
        model.partial_fit(x_train[shuffled], y_train[shuffled], classes=CLASSES)
        yield float(model.score(x_val, y_val))


def mlp_curve(seed: int, hparams: Mapping[str, object], epochs: int) -> Iterator[float]:
    x_train, y_train, x_val, y_val = split(seed)
    # partial_fit is one pass over the data, in batches the model shuffles
    # with its own random_state.
    model = MLPClassifier(
        hidden_layer_sizes=(32,),
        solver="adam",
        learning_rate_init=hparams["lr"],
        alpha=hparams["alpha"],
        batch_size=hparams["batch_size"],
        random_state=seed,
    )
    for _ in range(epochs):
        model.partial_fit(x_train, y_train, classes=CLASSES)
        yield float(model.score(x_val, y_val))


@dataclass(frozen=True)
class Stage:
    """A grid and the training of one of its combinations."""

    name: str
    title: str
    grid: dict[str, list[object]]
    # (seed, hparams, epochs) -> the validation accuracy after each epoch
    curve: Callable[[int, Mapping[str, object], int], Iterator[float]]

    def combinations(self) -> list[dict[str, object]]:
        product = itertools.product(*self.grid.values())
        return [dict(zip(self.grid, values, strict=True)) for values in product]

    def index(self, hparams: Mapping[str, object]) -> int:
        """The combination's place in `combinations()`."""
        return self.combinations().index({k: hparams[k] for k in self.grid})


STAGES = {
    # Three values around scikit-learn's defaults for alpha (1e-4) and eta0
    # (0.01, at a constant learning rate), and three losses: fixed before any
    # pruner ran on it.
    "sgd": Stage(
        "sgd",
        "SGDClassifier/digits",
        {
            "alpha": [1e-05, 0.0001, 0.001],
            "eta0": [0.001, 0.01, 0.1],
            "loss": ["hinge", "log_loss", "modified_huber"],
        },
        sgd_curve,
    ),
    # Curves that cross: a large batch or a small rate starts slow and ends
    # high, a large rate starts fast and stalls, a large alpha caps the end.
    "mlp": Stage(
        "mlp",
        "MLPClassifier(32, adam)/digits",
        {
            "lr": [0.001, 0.003, 0.01],
            "alpha": [0.0001, 0.1, 1.0],
            "batch_size": [64, 256, 1024],
        },
        mlp_curve,
    ),
}
