"""A Keras sweep that stops its hopeless trials early: Optuna's median pruner
on the validation accuracy that `trial.keras_callbacks()` reports at the end
of every epoch (12 trials of up to 10 epochs).

Plain SGD at these small learning rates barely moves in 10 epochs (a tenth to
three quarters of the digits right, where Adam gets nine in ten), and its
validation accuracy after the first epoch already says so: the pruner stops
those six trials there, and Adam's six run to the end. The test holds no
pruning code of its own.

Why the median pruner: Optuna's `MedianPruner` lets the first five trials run
to the end, then stops a trial whose best validation accuracy so far is below
the median of the finished trials' at the same epoch. The grid runs in
declaration order, Adam first, so the finished trials are models that learn.
Successive halving (`pruner="halving"`) keeps only the top quarter of the
trials that reached a step, which with a dozen trials means only the best so
far: it would stop good Adam trials too.

A run into a logdir that already holds this study (a rerun with the ini's
`hparams_logdir`) prunes against every curve recorded there, so Adam's
slower starters may stop as well; record into a fresh logdir, or pass
`--hparams-no-prune`, to run every trial to the end.
"""

from __future__ import annotations

import pytest
from data import digits

from pytest_hparams import Metric, hparam_grid

tf = pytest.importorskip("tensorflow", reason="the Keras sweep needs tensorflow-cpu")

EPOCHS = 10


@hparam_grid(
    optimizer=["adam", "sgd"],
    learning_rate=[0.001, 0.01],
    num_units=[16, 32, 64],
    pruner="median",
    metrics=[
        # The primary metric, reported to the pruner at each epoch's end under
        # Keras' name for it (val_accuracy) by trial.keras_callbacks().
        Metric(
            "epoch_accuracy", group="validation", display_name="Validation accuracy", tolerance=0.03
        ),
        Metric("accuracy", display_name="Test accuracy", tolerance=0.03),
    ],
)
def test_pruned_digits(optimizer, learning_rate, num_units, trial):
    x_train, x_test, y_train, y_test = digits()
    tf.keras.utils.set_random_seed(trial.seed)
    model = tf.keras.Sequential(
        [
            tf.keras.Input(shape=(64,)),
            tf.keras.layers.Dense(num_units, activation="relu"),
            tf.keras.layers.Dense(10, activation="softmax"),
        ]
    )
    opt = {"adam": tf.keras.optimizers.Adam, "sgd": tf.keras.optimizers.SGD}[optimizer]
    model.compile(
        optimizer=opt(learning_rate=learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    # A pruned trial stops inside fit(), at the end of the epoch its pruner
    # gave up on; the lines below run only for the trials that finish.
    model.fit(
        x_train,
        y_train,
        epochs=EPOCHS,
        batch_size=32,
        validation_split=0.2,
        verbose=0,
        callbacks=trial.keras_callbacks(),
    )
    # No accuracy assertion: the pruner is what drops hopeless trials, and
    # under --hparams-no-prune they run to the end without failing the run.
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    return {"accuracy": accuracy}
