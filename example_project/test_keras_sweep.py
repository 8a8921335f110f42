"""TensorBoard's HParams tutorial as a pytest sweep: a small Keras model on the
digits data, over num_units x learning rate x optimizer (12 trials).

The HParam objects are written exactly as in the tutorial; pytest-hparams
re-exports TensorBoard's classes so this module does not need
`tensorboard.plugins.hparams.api` (which imports TensorFlow by itself).
"""

from __future__ import annotations

import pytest
from data import digits

from pytest_hparams import Discrete, HParam, Metric, RealInterval, hparam_grid

tf = pytest.importorskip("tensorflow", reason="the Keras sweep needs tensorflow-cpu")

HP_NUM_UNITS = HParam("num_units", Discrete([16, 32, 64]), display_name="Units")
HP_LEARNING_RATE = HParam("learning_rate", RealInterval(0.001, 0.5), display_name="Learning rate")
HP_OPTIMIZER = HParam("optimizer", Discrete(["adam", "sgd"]))

EPOCHS = 8


@hparam_grid(
    HP_NUM_UNITS,
    HP_LEARNING_RATE,
    HP_OPTIMIZER,
    learning_rate=[0.01, 0.1],
    # One run of each combination: the tolerance has to absorb the noise
    # between machines and TensorFlow builds (compare test_seeded_sweep.py).
    metrics=[
        Metric("accuracy", display_name="Test accuracy", tolerance=0.03),
        Metric("loss", goal="min", display_name="Test loss", tolerance="30%"),
        # Written by Keras through trial.keras_callbacks(), into <run>/validation.
        Metric("epoch_accuracy", group="validation", display_name="Validation accuracy"),
    ],
)
def test_train_digits(num_units, learning_rate, optimizer, trial):
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
    # Keras' own TensorBoard callback writes the train and validation curves
    # into this trial's run, beside its session in the HParams dashboard.
    model.fit(
        x_train,
        y_train,
        epochs=EPOCHS,
        batch_size=32,
        validation_split=0.2,
        verbose=0,
        callbacks=trial.keras_callbacks(),
    )
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    # A sanity gate: ten classes, so chance is 0.1.
    assert accuracy > 0.2, f"accuracy {accuracy:.3f} is barely better than chance"
    return {"accuracy": accuracy, "loss": loss}
