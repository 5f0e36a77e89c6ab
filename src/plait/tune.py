"""`plait tune`: hyperparameter search over training runs, with Optuna.

Each trial is a `plait train` of the same table and split, the network alone, with
settings drawn by Optuna's TPE sampler: learning rate, weight decay, batch size, fusion,
width (the head's hidden layer and the pretrained features' projection), and with
pretrained encoders the dropout on their features and how many of the image and text
backbones' last blocks are fine-tuned (0: frozen and cached). A trial runs for at most
a third of the search's budget, so one slow setting cannot spend it all, and with a
budget the fine-tuning depth is searched only where a timed training step says that five
epochs of it fit in one trial's share (affordable_depth). Where the
preset trains candidates (`best`, or `medium` on a table with numeric or category
columns) the best settings are trained once more at the end with the candidates and
their ensemble (plait.ensemble) in the last quarter of the budget, LightGBM's own
settings searched first (plait.ensemble.lightgbm_search). A median
pruner stops a trial whose validation loss after an epoch is worse than the median of
earlier trials at that epoch, through a Lightning callback. The study lives in an SQLite
file in the output's work folder (`.OUT.work/tune`), so `--resume` continues a killed
search where it stopped. The best trial's run folder becomes OUT, with trials.csv (one
row per trial, the first one the config's own settings, the LightGBM trials after the
network's) and a plot of the search
(search.png) beside its files.
"""

from __future__ import annotations

import json
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd

from plait.atomic import atomic_write_text
from plait.budget import format_seconds
from plait.config import ComponentSpec, OutputConfig, PlaitConfig, ResolvedConfig, apply_overrides, as_config
from plait.data.prepare import trainable_rows
from plait.data.schema import resolve_config
from plait.data.table import Table, read_table
from plait.encoders import ENCODERS
from plait.ensemble import beside_network
from plait.errors import ConfigError, PlaitError
from plait.heads import HEADS
from plait.output_paths import check_output_folder, table_inputs
from plait.presets import PRETRAINED_ENCODERS, PRETRAINED_NAMES
from plait.report import write_report
from plait.resume import work_dir
from plait.runfolder import staging

STUDY = "plait-tune"
MIN_TRIAL_SECONDS = 10.0  # a trial is not started with less of --time-limit left
FINAL_SHARE = 0.25  # of --time-limit, kept for the best settings' run with the ensemble (preset best)
# The median pruner judges a trial after this many complete ones, and from this epoch on.
STARTUP_TRIALS, WARMUP_EPOCHS = 3, 5
FUSIONS = ("concat", "gated", "attention")  # one per family: feature-level, gated, attention
LEARNING_RATES, WEIGHT_DECAYS = (1e-4, 1e-2), (1e-6, 1e-2)  # searched on a log scale
BATCH_SIZES = (32, 64, 128)
WIDTHS = (64, 128, 256, 512)  # the head's hidden layer (default 128), the pretrained projection
# Last blocks of the image and text backbones a trial may fine-tune (the video one stays
# frozen: a backbone per sampled frame is too slow to train on a CPU).
MAX_FINETUNE_DEPTH, FINETUNED = 2, ("image", "text")
TRIAL_SHARE = 1 / 3  # of the search's budget, the most one trial may take
LIGHTGBM_TRIALS = 30  # LightGBM settings tried in the final run (plait.ensemble.lightgbm_search)


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


def suggest(
    trial: Any, base: PlaitConfig, resolved: ResolvedConfig, max_depth: int = MAX_FINETUNE_DEPTH
) -> dict[str, Any]:
    """One trial's settings, as apply_overrides flags. Each trial trains the network
    alone (its validation loss is what the pruner and the sampler see) unless the
    config lists candidates; the preset's candidates are added to the best trial's
    settings at the end. `resolved`: `base` resolved against the table, which says
    which settings apply (a head with a hidden layer, pretrained image or text columns).
    `max_depth`: the most last blocks a trial may fine-tune (0: fine-tuning is not searched)."""
    flags: dict[str, Any] = {
        "learning_rate": trial.suggest_float("learning_rate", *LEARNING_RATES, log=True),
        "weight_decay": trial.suggest_float("weight_decay", *WEIGHT_DECAYS, log=True),
        "batch_size": trial.suggest_categorical("batch_size", list(BATCH_SIZES)),
        "fusion": trial.suggest_categorical("fusion", list(FUSIONS)),
    }
    if base.candidates == "auto":
        flags["candidates"] = ["neural"]
    pretrained = base.preset != "fast" and any(i.encoder.name in PRETRAINED_NAMES for i in resolved.inputs)
    widened = [o for o in resolved.outputs if "hidden_dim" in HEADS.params(o.head.name)]
    width = trial.suggest_categorical("width", list(WIDTHS)) if widened or pretrained else None
    if widened:  # the head's hidden layer; every target kept as the table resolved it
        outputs = resolved.outputs
        flags["outputs"] = [_with_width(o, width) if o in widened else _as_output(o) for o in outputs]
    if pretrained:  # the config's own encoders win over these
        dropout = trial.suggest_float("feature_dropout", 0.1, 0.7)
        depth = (
            trial.suggest_int("finetune_depth", 0, max_depth) if max_depth and _finetunable(resolved) else 0
        )
        flags["encoders"] = _encoders(base, dropout, width, depth)
    return flags


def _finetunable(resolved: ResolvedConfig) -> bool:
    """Whether the table has a pretrained image or text column a trial could fine-tune."""
    return bool({i.type for i in resolved.inputs if i.encoder.name in PRETRAINED_NAMES} & set(FINETUNED))


def _encoders(base: PlaitConfig, dropout: float, width: int | None, depth: int) -> dict[str, ComponentSpec]:
    """The preset's pretrained encoders with a trial's settings; the config's own win."""
    return {
        kind: _pretrained(spec, dropout, width, depth if kind in FINETUNED else 0)
        for kind, spec in PRETRAINED_ENCODERS.items()
    } | dict(base.encoders)


PROBE_ROWS = 4  # rows of the one training step that measures what fine-tuning costs


def finetune_row_seconds(table: Table, label: str | list[str] | None, base: PlaitConfig, depth: int) -> float:
    """Seconds of training per row with the image and text backbones' last `depth` blocks
    fine-tuned: one forward and backward pass of PROBE_ROWS rows through the model such
    a trial builds (its media decoded, no feature cache). Fine-tuning costs what the
    backbone costs on this machine: a few ms a row on a GPU, a second on a CPU."""
    from plait.data.datamodule import make_loader
    from plait.data.dataset import TableDataset
    from plait.data.prepare import fit_processors
    from plait.train import build_system

    dropout = PRETRAINED_ENCODERS["image"].params["dropout"]
    cfg = _resolved(table.frame, label, apply_overrides(base, encoders=_encoders(base, dropout, None, depth)))
    sample = table.frame.head(PROBE_ROWS)
    with warnings.catch_warnings():  # a few rows: the processors' notes about them do not matter
        warnings.simplefilter("ignore")
        processors, targets = fit_processors(
            cfg, sample, table.base_dir, all_labels=table.frame, strict=False
        )
        rows = TableDataset.from_frame(
            sample, processors, targets, training=True, base_dir=table.base_dir, on_bad_row="missing"
        )
    batch = next(iter(make_loader(rows, len(sample), shuffle=False)))
    system = build_system(cfg, processors, targets, val_rows=1).train()
    seconds = []
    for _ in range(2):  # the first pass also pays for one-off set-up (allocations, kernels)
        start = time.perf_counter()
        system.batch_loss(batch).backward()
        seconds.append(time.perf_counter() - start)
    return seconds[-1] / len(sample)


def affordable_depth(
    table: Table, label: str | list[str] | None, base: PlaitConfig, rows: int, cap: float | None
) -> tuple[int, str]:
    """The most blocks trials may fine-tune, and a note when it is 0 for the cost: a
    fine-tuning trial that cannot reach the pruner's first judgement (WARMUP_EPOCHS
    passes over the training rows) within one trial's share of the budget only spends it."""
    if cap is None:
        return MAX_FINETUNE_DEPTH, ""
    try:
        seconds = WARMUP_EPOCHS * rows * finetune_row_seconds(table, label, base, MAX_FINETUNE_DEPTH)
    except PlaitError:  # the probe could not read its rows: the trials will say why
        return MAX_FINETUNE_DEPTH, ""
    if seconds <= cap:
        return MAX_FINETUNE_DEPTH, ""
    return 0, (
        f"fine-tuning is not searched: {WARMUP_EPOCHS} epochs of it would take about "
        f"{format_seconds(seconds)} on this machine, more than a trial's share ({format_seconds(cap)})"
    )


def _default_trial(base: PlaitConfig) -> dict[str, Any]:
    """The config's settings (the defaults where it sets none) as a trial's parameters,
    each within its search range; those a table does not search are ignored."""
    trainer = base.trainer
    return {
        "learning_rate": min(max(trainer.learning_rate, LEARNING_RATES[0]), LEARNING_RATES[1]),
        "weight_decay": min(max(trainer.weight_decay, WEIGHT_DECAYS[0]), WEIGHT_DECAYS[1]),
        "batch_size": trainer.batch_size if trainer.batch_size in BATCH_SIZES else 64,
        "fusion": base.fusion.name if base.fusion.name in FUSIONS else FUSIONS[0],
        "width": 128,  # the heads' and the pretrained projection's default
        "feature_dropout": PRETRAINED_ENCODERS["image"].params["dropout"],
        "finetune_depth": 0,
    }


def _pretrained(spec: ComponentSpec, dropout: float, width: int | None, depth: int) -> ComponentSpec:
    """A preset's pretrained encoder with a trial's dropout, projection width and number
    of fine-tuned last blocks (0: frozen, its features cached)."""
    params = {**spec.params, "dropout": dropout}
    if width is not None and "out_dim" in ENCODERS.params(spec.name):
        params["out_dim"] = width
    if depth:
        params.update(finetune="last_n", last_n=depth)
    return spec.model_copy(update={"params": params}, deep=True)


def _as_output(out: OutputConfig) -> OutputConfig:
    """A resolved target as a config's `outputs:` entry."""
    return OutputConfig.model_validate(out.model_dump(include=set(OutputConfig.model_fields)))


def _with_width(out: OutputConfig, width: int | None) -> OutputConfig:
    assert out.head is not None and width is not None
    head = out.head.model_copy(update={"params": {**out.head.params, "hidden_dim": width}}, deep=True)
    return _as_output(out).model_copy(update={"head": head})


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

    if not study.trials:  # the first trial is the config's own settings: the search starts from the default
        study.enqueue_trial(_default_trial(base))
    # Where the preset trains candidates (candidates "auto": best, or medium on a table with
    # numeric or category columns), trials train the network alone and the best trial's
    # settings are trained once more with the candidates and the ensemble, in the last
    # FINAL_SHARE of the budget.
    table = read_table(data)
    frame = table.frame
    resolved = _resolved(frame, label, base)
    final = base.candidates == "auto" and bool(beside_network(resolved.candidates))
    reserve = FINAL_SHARE * time_limit if final and time_limit is not None else 0.0
    cap = None if time_limit is None else max(MIN_TRIAL_SECONDS, TRIAL_SHARE * (time_limit - reserve))
    depth, note = MAX_FINETUNE_DEPTH, ""
    if base.preset != "fast" and _finetunable(resolved):
        rows = trainable_rows(frame, resolved.split_column)
        depth, note = affordable_depth(table, label, base, rows, cap)
    if note and verbose:
        print(note, flush=True)

    def left() -> float | None:
        return None if time_limit is None else time_limit - (time.monotonic() - started) - reserve

    def objective(trial: Any) -> float:
        run = folder / f"trial-{trial.number}"
        remaining = left()
        if remaining is not None and remaining < MIN_TRIAL_SECONDS:
            study.stop()  # no time for another run: this one is not started
            raise optuna.TrialPruned("the time limit is spent")
        # Each trial stops within what is left of --time-limit (plait.budget), and its share.
        limit = None if remaining is None or cap is None else min(remaining, cap)
        cfg = apply_overrides(base, time_limit=limit, **suggest(trial, base, resolved, depth))
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
    table.insert(0, "stage", "network")
    best = folder / f"trial-{study.best_trial.number}"
    if final:  # the best settings once more, with the candidates beside the network
        reserve = 0.0
        settings = suggest(optuna.trial.FixedTrial(study.best_params), base, resolved, depth)
        settings.pop("candidates")
        if not base.lightgbm.search_trials:  # LightGBM's settings searched too, before it is bagged
            settings["lightgbm"] = base.lightgbm.model_copy(update={"search_trials": LIGHTGBM_TRIALS})
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
        table = pd.concat([table, _lightgbm_trials(best)], ignore_index=True)
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


def _resolved(frame: pd.DataFrame, label: str | list[str] | None, base: PlaitConfig) -> ResolvedConfig:
    """`base` resolved against the table, as `plait train` would: which candidates the
    preset trains on it (plait.presets.default_candidates), which encoders and heads its
    columns get."""
    labels = [label] if isinstance(label, str) else list(label or [])
    with warnings.catch_warnings():  # the trials' own runs give the schema's warnings
        warnings.simplefilter("ignore")
        return resolve_config(frame, base, labels)


TRIAL_COLUMNS = ("number", "value", "seconds")  # of a LightGBM trial's row; the rest are its settings


def _lightgbm_trials(run: Path) -> pd.DataFrame:
    """The final run's search of LightGBM's settings (ensemble.json), as trials.csv rows."""
    path = run / "ensemble.json"
    searches = json.loads(path.read_text()).get("lightgbm_search", {}) if path.is_file() else {}
    rows = [
        {
            "stage": "lightgbm",
            "target": target,
            "number": trial["number"],
            "value": trial["value"],
            "state": "complete",
            "seconds": trial["seconds"],
            **{f"params_lightgbm_{k}": v for k, v in trial.items() if k not in TRIAL_COLUMNS},
        }
        for target, trials in searches.items()
        for trial in trials
    ]
    return pd.DataFrame(rows)


def _plot(table: pd.DataFrame, path: Path) -> None:
    """Each trial's validation loss in order, and the best so far: the network's trials,
    and beside them LightGBM's (their losses are on another scale) where it was searched."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = [(name, rows) for name, rows in table.groupby("stage", sort=False)]
    fig, axes = plt.subplots(1, len(stages), figsize=(6 * len(stages), 3.2), squeeze=False)
    for ax, (name, rows) in zip(axes[0], stages, strict=True):
        values = rows["value"].astype(float)
        ax.scatter(rows["number"], values, s=14, label="trial")
        ax.plot(rows["number"], values.cummin(), color="C1", label="best so far")
        ax.set_title("network" if name == "network" else "LightGBM (final run)")
        ax.set_xlabel("trial")
        ax.set_ylabel("validation loss")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
