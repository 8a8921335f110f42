"""trial.keras_callbacks(): Keras' curves beside the trial's session."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Dashboard

needs_tensorflow = pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None,
    reason="needs tensorflow-cpu (pip install -e '.[tensorflow]'); CI installs it",
)


@needs_tensorflow
def test_keras_curves_land_in_the_trials_run_next_to_its_session(
    pytester: pytest.Pytester, dashboard: Callable[[Path], Dashboard]
) -> None:
    pytester.makepyfile(
        test_keras="""
        import numpy as np
        import tensorflow as tf
        from pytest_hparams import Metric, hparam_grid

        @hparam_grid(units=[4], metrics=[
            Metric("accuracy"),
            Metric("epoch_accuracy", group="validation", display_name="val accuracy"),
        ])
        def test_keras(units, trial):
            tf.keras.utils.set_random_seed(trial.seed)
            x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
            y = (x[:, 0] > 0).astype("int32")
            model = tf.keras.Sequential([
                tf.keras.Input(shape=(3,)),
                tf.keras.layers.Dense(units, activation="relu"),
                tf.keras.layers.Dense(2, activation="softmax"),
            ])
            model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
            model.fit(x, y, epochs=2, validation_split=0.25, verbose=0,
                      callbacks=trial.keras_callbacks())
            return {"accuracy": model.evaluate(x, y, verbose=0)[1]}
        """
    )
    # A subprocess: TensorFlow must not be imported into pytester's process twice.
    result = pytester.runpytest_subprocess("--hparams-logdir=logs")
    result.assert_outcomes(passed=1)
    board = dashboard(pytester.path / "logs")
    runs = board.multiplexer.Runs()
    run = "test_keras.py/test_keras/units=4"
    assert {f"{run}/train", f"{run}/validation"} <= set(runs)
    assert [e.step for e in board.multiplexer.Tensors(f"{run}/train", "epoch_loss")] == [0, 1]
    (group,) = board.groups
    assert board.status(group) == "STATUS_SUCCESS"
    metrics = {(m.name.group, m.name.tag) for m in group.metric_values}
    assert metrics == {("", "accuracy"), ("validation", "epoch_accuracy")}


def test_keras_callbacks_without_tensorflow_name_the_extra(tmp_path: Path) -> None:
    # A Python where `import tensorflow` fails, whether or not it is installed.
    blocker = tmp_path / "tensorflow.py"
    blocker.write_text("raise ModuleNotFoundError(\"No module named 'tensorflow'\")\n")
    code = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from pytest_hparams.trial import Trial\n"
        "from pytest_hparams.records import TrialKey\n"
        "from pytest_hparams.sweep import build_sweep\n"
        "sweep = build_sweep([], {'a': [1]})\n"
        "trial = Trial(TrialKey('t[a:1]', 't', 'a:1', {'a': 1}), sweep, None)\n"
        "try:\n"
        "    trial.keras_callbacks()\n"
        "except ModuleNotFoundError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == (
        "trial.keras_callbacks() needs TensorFlow; "
        "install it with: pip install 'pytest-hparams[tensorflow]'"
    )


@needs_tensorflow
def test_keras_callbacks_prune_a_sweep_at_an_epochs_end(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_keras="""
        import numpy as np
        import tensorflow as tf
        from pytest_hparams import Metric, hparam_grid

        # A learning rate of 0 never learns: its curve is the worst at every epoch.
        @hparam_grid(lr=[0.05, 0.04, 0.03, 0.02, 0.01, 0.0], pruner="median", metrics=[
            Metric("epoch_loss", group="validation"),
        ])
        def test_keras(lr, trial):
            tf.keras.utils.set_random_seed(0)
            x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
            y = (x[:, 0] > 0).astype("int32")
            model = tf.keras.Sequential([
                tf.keras.Input(shape=(3,)),
                tf.keras.layers.Dense(2, activation="softmax"),
            ])
            model.compile(tf.keras.optimizers.SGD(lr), "sparse_categorical_crossentropy")
            model.fit(x, y, epochs=2, validation_split=0.25, verbose=0,
                      callbacks=trial.keras_callbacks())
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly", "--hparams-logdir=logs")
    result.stdout.fnmatch_lines(
        [
            "test_keras.py .....p*",
            "   0.0 * pruned at 0",  # after the best trial's "*" column
            # Not returned: the table ranks the trials by the value Keras reported.
            "6 trials: 5 passed, 1 pruned; best epoch_loss=* at [[]lr:0.05[]]",
            "*= 5 passed, *1 pruned in *",
        ]
    )
    # And so without a pruner, where nothing is reported to a study.
    result = pytester.runpytest_subprocess("-p", "no:randomly", "--hparams-no-prune")
    result.stdout.fnmatch_lines(["6 trials: 6 passed; best epoch_loss=* at [[]lr:0.05[]]"])
