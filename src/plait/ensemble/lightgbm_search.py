"""A search of the lightgbm candidate's settings with Optuna, before it is bagged.

Each trial fits LightGBM on the training rows with settings drawn by Optuna's TPE
sampler (learning rate, leaves, rows per leaf, column sampling, L2 penalty), early-stops
it on the validation rows and is scored by its validation loss (the loss the ensemble's
selection uses, plait.ensemble.selection.log_loss). Fits take seconds on the tables the
candidates serve, so a few dozen trials cost about as much as one network. The best
settings then fit the member, bagged or not, as the config's would. `plait tune` sets
`lightgbm.search_trials` for its final run; its trials.csv lists these trials too.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from plait.config import LightGBMConfig
from plait.ensemble.members import LightGBMMember
from plait.ensemble.selection import log_loss
from plait.errors import ConfigError

# Of the time left until the members' deadline, what the search may take: the rest fits
# (and bags) the member and the linear probe.
SEARCH_SHARE = 0.5


def suggest_settings(trial: Any, base: LightGBMConfig) -> LightGBMConfig:
    """One trial's settings; search_trials is kept (it is not a LightGBM parameter)."""
    return base.model_copy(
        update={
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
            "num_leaves": trial.suggest_int("num_leaves", 4, 128, log=True),
            "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 2, 50, log=True),
            "feature_fraction": trial.suggest_float("feature_fraction", 0.3, 1.0),
            "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 10.0, log=True),
        }
    )


def search_lightgbm(
    data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    kind: str,
    classes: int,
    categorical: list[int],
    seed: int,
    base: LightGBMConfig,
    deadline: float | None,
) -> tuple[LightGBMConfig, list[dict[str, Any]]]:
    """The best of `base.search_trials` settings by validation loss, and every trial as
    a row (number, validation loss, seconds, settings). The config's own settings are
    the first trial, so the search never returns worse ones than no search. Trials stop
    at SEARCH_SHARE of the time left until `deadline`."""
    try:
        import optuna
    except ImportError:
        raise ConfigError("lightgbm.search_trials needs Optuna: pip install 'plait[tune]'") from None
    x, y, x_val, y_val = data
    loss = log_loss(kind)
    now = time.monotonic()
    stop = None if deadline is None else now + SEARCH_SHARE * max(0.0, deadline - now)
    rows: list[dict[str, Any]] = []
    tried: dict[int, LightGBMConfig] = {}

    def objective(trial: Any) -> float:
        settings = base if trial.number == 0 else suggest_settings(trial, base)
        tried[trial.number] = settings
        start = time.perf_counter()
        member = LightGBMMember.fit(x, y, x_val, y_val, kind, classes, categorical, seed, stop, settings)
        value = float(loss(member.predict(x_val), y_val))
        rows.append(
            {
                "number": trial.number,
                "value": value,
                "seconds": round(time.perf_counter() - start, 2),
                **settings.model_dump(exclude={"search_trials"}),
            }
        )
        return value

    def out_of_time(study: Any, trial: Any) -> None:
        if stop is not None and time.monotonic() > stop:
            study.stop()

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=base.search_trials, callbacks=[out_of_time], show_progress_bar=False)
    return tried[study.best_trial.number], rows
