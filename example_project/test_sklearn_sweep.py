"""A sweep without TensorFlow: logistic regression on the digits data."""

from __future__ import annotations

from data import digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss

from pytest_hparams import Metric, hparam_grid


@hparam_grid(
    C=[0.01, 0.1, 1.0, 10.0],
    fit_intercept=[True, False],
    metrics=[Metric("accuracy", tolerance=0.03), Metric("loss", tolerance="30%")],
)
def test_logistic_regression(C, fit_intercept):
    x_train, x_test, y_train, y_test = digits()
    model = LogisticRegression(C=C, fit_intercept=fit_intercept, max_iter=500)
    model.fit(x_train, y_train)
    return {
        "accuracy": accuracy_score(y_test, model.predict(x_test)),
        "loss": log_loss(y_test, model.predict_proba(x_test)),
    }
