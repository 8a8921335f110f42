"""Repeats over seeds, gated by a test that knows the noise (no TensorFlow).

A linear model trained by stochastic gradient descent: its accuracy moves
with the seed that shuffles the data, by about half a point here. Each
combination runs five times, each repeat with its own `trial.seed`; the
baseline holds the five values, and a run fails only if a combination's mean
dropped by more than the tolerance (0.01, a third of what the single-run
sweeps need) and a one-sided Welch's t-test says the drop is not noise.

Try it (from the repository root):

    pytest example_project/test_seeded_sweep.py --hparams-seed 1
    EXAMPLE_SGD_EPOCHS=3 pytest example_project/test_seeded_sweep.py
"""

from __future__ import annotations

import os

from data import digits
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import accuracy_score

from pytest_hparams import Metric, hparam_grid

# The documented knob for a real degradation: fewer passes over the data.
EPOCHS = int(os.environ.get("EXAMPLE_SGD_EPOCHS", "20"))


@hparam_grid(
    alpha=[1e-4, 1e-3],
    loss=["hinge", "log_loss"],
    repeats=5,
    metrics=[Metric("accuracy", tolerance=0.01)],
)
def test_sgd_digits(alpha, loss, trial):
    x_train, x_test, y_train, y_test = digits()
    model = SGDClassifier(
        loss=loss, alpha=alpha, max_iter=EPOCHS, tol=None, random_state=trial.seed
    )
    model.fit(x_train, y_train)
    return {"accuracy": accuracy_score(y_test, model.predict(x_test))}
