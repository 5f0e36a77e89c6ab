"""`plait tune`: hyperparameter search over training runs, with Optuna.

Each trial is a `plait train` of the same table and split, the network alone, with
settings drawn by Optuna's TPE sampler: learning rate, weight decay, batch size, fusion
and the dropout on frozen pretrained features. Where the preset trains candidates
(`best`, or `medium` on a table with numeric or category columns) the best settings are
trained once more at the end with the candidates and their ensemble (plait.ensemble)
in the last quarter of the budget. A median
pruner stops a trial whose validation loss after an epoch is worse than the median of
earlier trials at that epoch, through a Lightning callback. The study lives in an SQLite
file in the output's work folder (`.OUT.work/tune`), so `--resume` continues a killed
search where it stopped. The best trial's run folder becomes OUT, with trials.csv (one
row per trial) and a plot of the search (search.png) beside its files.
"""

from __future__ import annotations

import shutil
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd

from plait.atomic import atomic_write_text
from plait.config import PlaitConfig, apply_overrides, as_config
from plait.data.schema import resolve_config
from plait.data.table import read_table
from plait.ensemble import beside_network
from plait.errors import ConfigError, PlaitError
from plait.output_paths import check_output_folder, table_inputs
from plait.presets import PRETRAINED_ENCODERS
from plait.report import write_report
from plait.resume import work_dir
from plait.runfolder import staging

STUDY = "plait-tune"
MIN_TRIAL_SECONDS = 10.0  # a trial is not started with less of --time-limit left
FINAL_SHARE = 0.25  # of --time-limit, kept for the best settings' run with the ensemble (preset best)
# The median pruner judges a trial after this many complete ones, and from this epoch on.
STARTUP_TRIALS, WARMUP_EPOCHS = 3, 5
FUSIONS = ("concat", "gated", "attention")  # one per family: feature-level, gated, attention


def optuna_module() -> Any:
    try:
        import optuna
    except ImportError:
        raise ConfigError("plait tune needs Optuna: pip install 'plait[tune]'") from None
    return optuna


class PruningCallback(L.Callback):
    """Reports the validation loss to the trial after each epoch and stops the training
    (optuna.TrialPruned) when the pruner says so."""

    def __init__(self, trial: Any, monitor: str = "val_loss") -> None:
        self.trial, self.monitor = trial, monitor

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if value is None or trainer.sanity_checking:
            return
        self.trial.report(float(value), step=trainer.current_epoch)
        if self.trial.should_prune():
            raise optuna_module().TrialPruned(
                f"epoch {trainer.current_epoch}: {self.monitor} {float(value):.4g}"
            )


def suggest(trial: Any, base: PlaitConfig) -> dict[str, Any]:
    """One trial's settings, as apply_overrides flags. Each trial trains the network
    alone (its validation loss is what the pruner and the sampler see) unless the
    config lists candidates; `--preset best` then adds the ensemble to the best trial."""
    flags: dict[str, Any] = {
        "learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True),
        "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [32, 64, 128]),
        "fusion": trial.suggest_categorical("fusion", list(FUSIONS)),
    }
    if base.candidates == "auto":
        flags["candidates"] = ["neural"]
    if base.preset != "fast":  # dropout on the frozen pretrained features, the config's encoders kept
        dropout = trial.suggest_float("feature_dropout", 0.1, 0.7)
        flags["encoders"] = {
            kind: spec.model_copy(update={"params": {**spec.params, "dropout": dropout}}, deep=True)
            for kind, spec in PRETRAINED_ENCODERS.items()
        } | dict(base.encoders)
    return flags


def tune(
    data: str | Path,
    label: str | list[str] | None = None,
    config: str | Path | dict[str, Any] | PlaitConfig | None = None,
    out: str | Path = "runs/tune",
    trials: int | None = None,
    time_limit: float | None = None,
    resume: bool = False,
    overwrite: bool = False,
    seed: int = 0,
    started: float | None = None,
    verbose: bool = True,
) -> pd.DataFrame:
    """Search training settings on `data`; the best trial's run folder is written to
    `out` (with trials.csv and search.png). Returns the trials, one row each."""
    optuna = optuna_module()
    started = time.monotonic() if started is None else started
    if trials is None and time_limit is None:
        raise ConfigError("plait tune needs --trials N or --time-limit (or both)")
    if trials is not None and trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {trials}")
    base = apply_overrides(as_config(config), progress=False)
    out_dir = Path(out)
    check_output_folder(out_dir, overwrite, table_inputs(data))  # before any trial
    folder = work_dir(out_dir) / "tune"
    storage = f"sqlite:///{folder / 'study.db'}"
    if folder.exists() and not resume and not overwrite:
        raise PlaitError(
            f"a search into {out_dir} was interrupted; continue it with --resume, or pass --overwrite"
        )
    if resume and not (folder / "study.db").is_file():
        raise PlaitError(f"no search to resume for {out_dir} (nothing in {folder})")
    if overwrite and not resume:
        shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    sampler = optuna.samplers.TPESampler(seed=seed)
    # Not before WARMUP_EPOCHS: early losses, under a warming-up learning rate, do not rank runs.
    pruner = optuna.pruners.MedianPruner(n_startup_trials=STARTUP_TRIALS, n_warmup_steps=WARMUP_EPOCHS)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=STUDY,
        storage=storage,
        sampler=sampler,
        pruner=pruner,
        direction="minimize",
        load_if_exists=True,
    )

    # Where the preset trains candidates (candidates "auto": best, or medium on a table with
    # numeric or category columns), trials train the network alone and the best trial's
    # settings are trained once more with the candidates and the ensemble, in the last
    # FINAL_SHARE of the budget.
    final = base.candidates == "auto" and _preset_trains_candidates(data, label, base)
    reserve = FINAL_SHARE * time_limit if final and time_limit is not None else 0.0

    def left() -> float | None:
        return None if time_limit is None else time_limit - (time.monotonic() - started) - reserve

    def objective(trial: Any) -> float:
        run = folder / f"trial-{trial.number}"
        remaining = left()
        if remaining is not None and remaining < MIN_TRIAL_SECONDS:
            study.stop()  # no time for another run: this one is not started
            raise optuna.TrialPruned("the time limit is spent")
        # Each trial stops within what is left of --time-limit (plait.budget).
        cfg = apply_overrides(base, time_limit=remaining, **suggest(trial, base))
        from plait.train import fit  # imported here: Lightning and the models load once a trial runs

        try:
            fit(
                data,
                label=label,
                config=cfg,
                out=run,
                overwrite=True,
                verbose=False,
                callbacks=[PruningCallback(trial)],
            )
        except ConfigError as err:
            if remaining is None or "time-limit" not in str(err):
                raise
            raise optuna.TrialPruned("the time limit ended it before one pass") from None
        log = pd.read_csv(run / "log.csv")
        return float(log["val_loss"].min())

    def report(study: Any, trial: Any) -> None:
        if verbose:
            value = "—" if trial.value is None else f"{trial.value:.4g}"
            print(f"trial {trial.number}: validation loss {value} ({trial.state.name.lower()})", flush=True)

    done = sum(t.state.is_finished() for t in study.trials)
    count = None if trials is None else max(0, trials - done)
    timeout = None if time_limit is None else max(1.0, time_limit - (time.monotonic() - started))
    if count != 0:
        study.optimize(
            objective, n_trials=count, timeout=timeout, callbacks=[report], show_progress_bar=False
        )
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise PlaitError("no trial finished within the budget; give a longer --time-limit")
    table = study.trials_dataframe(attrs=("number", "value", "params", "state", "duration"))
    table["seconds"] = table.pop("duration").dt.total_seconds().round(1)
    table["state"] = table["state"].str.lower()
    best = folder / f"trial-{study.best_trial.number}"
    if final:  # the best settings once more, with the candidates beside the network
        reserve = 0.0
        settings = suggest(optuna.trial.FixedTrial(study.best_params), base)
        settings.pop("candidates")
        from plait.train import fit

        best = folder / "final"
        fit(
            data,
            label=label,
            config=apply_overrides(base, time_limit=left(), **settings),
            out=best,
            overwrite=True,
            verbose=False,
        )
    with staging(out_dir, overwrite, None) as tmp:
        shutil.copytree(best, tmp, dirs_exist_ok=True)
        atomic_write_text(tmp / "trials.csv", table.to_csv(index=False))
        _plot(table, tmp / "search.png")
        write_report(tmp, shown_as=out_dir)  # with the search's section
    shutil.rmtree(work_dir(out_dir), ignore_errors=True)  # the study is finished and copied
    if verbose:
        print(
            f"{len(complete)} trial(s) finished; best validation loss {study.best_value:.4g} "
            f"with {study.best_params}"
        )
    return table


def _preset_trains_candidates(data: str | Path, label: str | list[str] | None, base: PlaitConfig) -> bool:
    """Whether `plait train` with `base` would train candidates beside the network on this
    table: the preset's choice for its columns' types (plait.presets.default_candidates)."""
    labels = [label] if isinstance(label, str) else list(label or [])
    with warnings.catch_warnings():  # the trials' own runs give the schema's warnings
        warnings.simplefilter("ignore")
        resolved = resolve_config(read_table(data).frame, base, labels)
    return bool(beside_network(resolved.candidates))


def _plot(table: pd.DataFrame, path: Path) -> None:
    """Each trial's validation loss in order, and the best so far."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = table["value"].astype(float)
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.scatter(table["number"], values, s=14, label="trial")
    ax.plot(table["number"], values.cummin(), color="C1", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel("validation loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
