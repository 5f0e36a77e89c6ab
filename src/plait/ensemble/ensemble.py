"""A run's network and its other candidates, weighted per target (plait.ensemble).

Training fits the candidates on the training split, scores each on the validation split
the network was early-stopped on, and keeps the weights of bagged greedy selection
(selection.py). At prediction time the ensemble takes the network's activated outputs
and the batch, and returns the weighted average per target: every path that predicts
(predict, evaluate, serve, explain, --robustness) goes through it unchanged, and an
input removed through its presence mask is missing for every member.

In the run folder: ensemble.json (weights, leaderboard, member files) and one file per
member and target under members/, with the embeddings' principal directions; their
sha256 in plait.json, checked on load.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from plait.config import Candidate, LightGBMConfig
from plait.data.processors import InputProcessor, TargetProcessor
from plait.ensemble.bagging import FOLDS, BaggedMember, fit_bagged
from plait.ensemble.features import FlatLayout, Projection, flat_features, flat_layout
from plait.ensemble.lightgbm_search import search_lightgbm
from plait.ensemble.members import TASKS, LightGBMMember, LinearMember, Member
from plait.ensemble.networks import SECOND_FUSIONS, NetworkCandidate, NetworkMember
from plait.ensemble.selection import bagged_weights, log_loss
from plait.errors import ConfigError, RunFolderError
from plait.evaluation.metrics import PRIMARY_METRIC, TaskMetrics

NEURAL = "neural"
MEMBER_TYPES: dict[str, Any] = {"lightgbm": LightGBMMember, "linear": LinearMember}
FILE = "ensemble.json"
PROJECTION = "members/projection.safetensors"  # the embeddings' principal directions
SUFFIX = {"lightgbm": ".txt", "linear": ".json"}
Fitted = Member | BaggedMember  # a member fitted once, or its folds


@dataclass
class Ensemble:
    layout: FlatLayout
    processors: dict[str, InputProcessor]
    weights: dict[str, dict[str, float]]  # target → candidate → weight (summing to 1)
    members: dict[str, dict[str, Fitted]]  # target → candidate → fitted member (weighted or not)
    leaderboard: list[dict[str, Any]] = field(default_factory=list)
    projection: Projection = field(default_factory=lambda: Projection({}, {}))
    networks: dict[str, NetworkMember] = field(default_factory=dict)  # candidate → second network
    # target → the lightgbm settings' search, a row per trial (lightgbm_search.py), if any
    searches: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # target → the weighted ensemble's honest predictions and their labels: out of fold on
    # the training and validation rows where every candidate has them, else on the
    # validation rows. Training's, for tuning decision thresholds; not saved.
    held_out: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def combine(
        self, neural: dict[str, Tensor], inputs: dict[str, Tensor], present: dict[str, Tensor]
    ) -> dict[str, Tensor]:
        """The network's activated outputs per target, with the weighted members' mixed
        in: probabilities (B, C) or (B,), or values (B,) in the label's units."""
        if not self.uses_members():
            return neural
        flat: np.ndarray | None = None  # the flat table, built once if a flat member is weighted
        second: dict[str, dict[str, Tensor]] = {}  # a second network's outputs, run once
        out = dict(neural)
        for target, weights in self.weights.items():
            total = weights.get(NEURAL, 0.0) * neural[target].double().cpu().numpy()
            for name, weight in weights.items():
                if name == NEURAL:
                    continue
                if name in self.networks:
                    if name not in second:
                        with torch.inference_mode():
                            second[name] = self.networks[name].predict(inputs, present)
                    pred = second[name][target].double().cpu().numpy()
                else:
                    if flat is None:
                        features = flat_features(self.layout, self.processors, inputs, present)
                        flat, _ = self.projection.apply(self.layout, features)
                    pred = self.members[target][name].predict(flat)
                total = total + weight * pred
            out[target] = torch.from_numpy(np.asarray(total)).to(neural[target].dtype)
        return out

    def uses_members(self) -> bool:
        """Whether any member beside the network carries weight."""
        return any(set(weights) - {NEURAL} for weights in self.weights.values())

    def save(self, folder: Path) -> None:
        """Write ensemble.json, the members' files and the projection into `folder`."""
        if any(self.members.values()) or self.projection.basis:
            (folder / "members").mkdir(exist_ok=True)
        files: dict[str, dict[str, str | list[str]]] = {}
        for i, (target, members) in enumerate(self.members.items()):
            for name, member in members.items():
                stem = f"members/{name}-{i}"  # by index: a target's name may hold any character
                if isinstance(member, BaggedMember):  # one file per fold
                    paths = [f"{stem}.fold{k}{SUFFIX[name]}" for k in range(len(member.folds))]
                    for fold, path in zip(member.folds, paths, strict=True):
                        fold.save(folder / path)
                    files.setdefault(target, {})[name] = paths
                else:
                    member.save(folder / f"{stem}{SUFFIX[name]}")
                    files.setdefault(target, {})[name] = f"{stem}{SUFFIX[name]}"
        info: dict[str, Any] = {"weights": self.weights, "files": files, "leaderboard": self.leaderboard}
        if self.searches:
            info["lightgbm_search"] = self.searches
        if self.networks:
            (folder / "members").mkdir(exist_ok=True)
            info["networks"] = {}
            for name, network in self.networks.items():
                path = f"members/{name}.safetensors"
                network.save(folder / path)
                info["networks"][name] = {"fusion": network.fusion, "file": path}
        if self.projection.basis:  # arrays by input position: an input's key may hold any character
            order = list(self.layout.inputs)
            arrays = {
                f"{part}.{order.index(k)}": torch.from_numpy(
                    np.ascontiguousarray(getattr(self.projection, part)[k])
                )
                for k in self.projection.basis
                for part in ("mean", "basis")
            }
            save_file(arrays, str(folder / PROJECTION))
            info["projection"] = PROJECTION
        (folder / FILE).write_text(json.dumps(info, indent=2))

    @classmethod
    def load(
        cls,
        folder: Path,
        processors: dict[str, InputProcessor],
        targets: dict[str, TargetProcessor],
        build_network: Callable[[dict[str, Any]], nn.Module],
    ) -> Ensemble:
        """`build_network(fusion)`: the run's network with that fusion, untrained (for
        second networks)."""
        info = json.loads((folder / FILE).read_text())

        def member(name: str, path: str | list[str], kind: str) -> Fitted:
            if isinstance(path, list):  # bagged: its folds
                return BaggedMember(name, [MEMBER_TYPES[name].load(folder / p, kind) for p in path])
            return MEMBER_TYPES[name].load(folder / path, kind)

        members = {
            target: {name: member(name, path, targets[target].kind) for name, path in files.items()}
            for target, files in info["files"].items()
        }
        layout = flat_layout(processors)
        projection = Projection({}, {})
        if info.get("projection"):
            order = list(layout.inputs)
            arrays = {k: v.double().numpy() for k, v in load_file(str(folder / info["projection"])).items()}
            for name, array in arrays.items():
                part, index = name.split(".")
                getattr(projection, part)[order[int(index)]] = array
        networks = {
            name: NetworkMember.load(entry["fusion"], folder / entry["file"], build_network)
            for name, entry in info.get("networks", {}).items()
        }
        searches = info.get("lightgbm_search", {})
        board = info["leaderboard"]
        return cls(layout, processors, info["weights"], members, board, projection, networks, searches)


def check_candidates(
    candidates: Iterable[str], processors: dict[str, InputProcessor], targets: dict[str, TargetProcessor]
) -> None:
    """One line for a candidate that cannot serve this run: no vector inputs, or no
    target it can learn."""
    wanted = [c for c in candidates if c != NEURAL]
    if not wanted:
        return
    if any(c in MEMBER_TYPES for c in wanted) and not flat_layout(processors).width:
        wanted = [c for c in wanted if c in MEMBER_TYPES]
        raise ConfigError(
            f"candidate {wanted[0]} reads numeric and category columns and frozen pretrained features "
            "(preset medium or best), and this run has none; drop it from --candidates"
        )
    if not any(p.kind in TASKS for p in targets.values()):
        kinds = ", ".join(sorted({p.kind for p in targets.values()}))
        raise ConfigError(
            f"candidate {wanted[0]} cannot learn {kinds} targets (only category, binary and numeric "
            "ones); drop it from --candidates"
        )


def beside_network(candidates: Iterable[str]) -> list[str]:
    """The candidates trained beside the network."""
    return [c for c in candidates if c != NEURAL]


def second_networks(candidates: Iterable[str]) -> list[str]:
    """The candidates that are the run's network with another fusion (networks.py)."""
    return [c for c in candidates if c in SECOND_FUSIONS]


def servable(
    candidates: list[Candidate],
    processors: dict[str, InputProcessor],
    targets: dict[str, TargetProcessor],
    streamed: bool,
    chosen: bool,
    fusion: str = "concat",
) -> list[Candidate]:
    """The candidates this run can train. One the user listed (`chosen`) that cannot
    serve it is a one-line ConfigError; a preset's is dropped (all of them, leaving the
    network, or a second network whose fusion is already the run's `fusion`)."""
    if not beside_network(candidates):
        return candidates
    same = [c for c in second_networks(candidates) if SECOND_FUSIONS[c] == fusion]
    if same and chosen:
        raise ConfigError(
            f"candidate {same[0]} trains the network again with the {fusion} fusion, which the "
            "run's network already uses; drop it from --candidates or choose another --fusion"
        )
    candidates = [c for c in candidates if c not in same]
    try:
        if streamed:
            raise ConfigError(
                f"candidates {', '.join(beside_network(candidates))} need a table that fits in memory, "
                "not a folder of Parquet shards; drop them from --candidates"
            )
        check_candidates(candidates, processors, targets)
    except ConfigError:
        if chosen:
            raise
        # A preset's second networks need no flat columns: kept where the targets allow.
        networks = [c for c in candidates if c not in MEMBER_TYPES]
        if streamed or networks == candidates:
            return [NEURAL]
        return servable(networks, processors, targets, streamed, chosen, fusion)
    return candidates


def fit_ensemble(
    candidates: list[str],
    processors: dict[str, InputProcessor],
    targets: dict[str, TargetProcessor],
    batches: dict[str, Iterable[Any]],
    neural_model: Any,
    seed: int,
    deadline: float | None,
    bag_seconds: float = 60.0,
    neural_oof: dict[str, np.ndarray] | None = None,
    networks: dict[str, NetworkCandidate] | None = None,
    lightgbm: LightGBMConfig | None = None,
) -> Ensemble:
    """Fit every candidate but the network on the "train" batches, score all on "val",
    and weight them per target by greedy selection (the network included when it is a
    candidate). `neural_model.predict(inputs, present)` gives the network's outputs.

    A member whose K-fold bagging fits in the time left (by `deadline`; with no limit,
    `bag_seconds` per member) is then bagged on the training and validation rows
    together, and scored on the validation rows by its out-of-fold predictions. When
    every member is bagged and `neural_oof` holds the network's out-of-fold predictions
    of the training rows (plait.network_folds), the weights are chosen on the training
    and validation rows together rather than on the validation rows alone. `networks`:
    second networks already trained (plait.network_folds.network_candidates), weighted
    like the others. `lightgbm`: the lightgbm candidate's settings; with search_trials,
    searched first on the validation rows (lightgbm_search.py)."""
    networks = networks or {}
    lightgbm = lightgbm or LightGBMConfig()
    searches: dict[str, list[dict[str, Any]]] = {}
    layout = flat_layout(processors)
    x_train, y_train, _ = _collect(layout, processors, batches["train"], None)
    x_val, y_val, neural_val = _collect(layout, processors, batches["val"], neural_model)
    projection = Projection.fit(layout, x_train)  # embeddings → their principal components
    (x_train, categorical), (x_val, _) = projection.apply(layout, x_train), projection.apply(layout, x_val)
    x_all = np.concatenate([x_train, x_val])
    val_rows = np.arange(len(x_train), len(x_all))
    weights: dict[str, dict[str, float]] = {}
    members: dict[str, dict[str, Fitted]] = {}
    board: list[dict[str, Any]] = []
    held_out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for target, proc in targets.items():
        if proc.kind not in TASKS:
            continue
        kind, classes = proc.kind, proc.num_classes or 0
        metric = PRIMARY_METRIC[kind]
        y_all = np.concatenate([y_train[target], y_val[target]])
        preds: dict[str, np.ndarray] = {}
        oof: dict[str, np.ndarray] = {}  # candidate → honest predictions of every row (x_all)
        fitted: dict[str, Fitted] = {}
        rows: dict[str, dict[str, Any]] = {}
        if NEURAL in candidates:
            preds[NEURAL] = neural_val[target]
            rows[NEURAL] = {}
            if neural_oof is not None:
                oof[NEURAL] = np.concatenate([neural_oof[target], neural_val[target]])
                rows[NEURAL] = _oof_row(kind, classes, oof[NEURAL], y_all)
        for name, network in networks.items():
            preds[name] = network.val[target]
            rows[name] = {"fit_seconds": round(network.fit_seconds, 2)}
            if network.oof is not None:
                oof[name] = np.concatenate([network.oof[target], network.val[target]])
                rows[name].update(_oof_row(kind, classes, oof[name], y_all))
        for name in (c for c in candidates if c in MEMBER_TYPES):
            if deadline is not None and time.monotonic() > deadline:
                break  # the budget is spent: the rest are left out (and the leaderboard says so)

            settings, searched = lightgbm, 0.0
            if name == "lightgbm" and lightgbm.search_trials:
                start = time.perf_counter()
                data = (x_train, y_train[target], x_val, y_val[target])
                settings, searches[target] = search_lightgbm(
                    data, kind, classes, categorical, seed, lightgbm, deadline
                )
                searched = time.perf_counter() - start
            fit = partial(
                _fit_member, name, x_all, y_all, kind, classes, categorical, seed, deadline, settings
            )
            start = time.perf_counter()
            member: Fitted = fit(np.arange(len(x_train)), val_rows)
            fit_seconds = time.perf_counter() - start
            preds[name] = member.predict(x_val)
            rows[name] = {}
            # K folds, each on (K-1)/K of all rows: about K times the holdout fit per row.
            bagging = FOLDS * fit_seconds * (len(x_all) * (FOLDS - 1) / FOLDS) / max(len(x_train), 1)
            if bagging < (bag_seconds if deadline is None else deadline - time.monotonic()):
                start = time.perf_counter()
                member, oof[name] = fit_bagged(name, fit, x_all, y_all, kind, seed)
                fit_seconds += time.perf_counter() - start
                preds[name] = oof[name][val_rows]  # out of fold: honest, like the network's
                rows[name] = _oof_row(kind, classes, oof[name], y_all)
            start = time.perf_counter()
            member.predict(x_val)
            per_row = (time.perf_counter() - start) / max(len(x_val), 1)
            rows[name].update(fit_seconds=round(fit_seconds, 2), predict_ms_per_row=round(1000 * per_row, 4))
            if searched:  # the settings' search before the fit (lightgbm_search.py)
                rows[name].update(search_trials=len(searches[target]), search_seconds=round(searched, 2))
            fitted[name] = member
        loss = log_loss(kind)
        if set(oof) == set(preds):  # every candidate honest on every row: select on them all
            chosen = bagged_weights(oof, y_all, loss, seed)
        else:
            chosen = bagged_weights(preds, y_val[target], loss, seed)
        weights[target] = chosen
        members[target] = fitted  # all kept: the leaderboard's candidates can be scored alone later
        for name, pred in preds.items():
            score = _score(kind, classes, pred, y_val[target])
            board.append(
                {
                    "target": target,
                    "candidate": name,
                    f"val_{metric}": score,
                    "val_loss": loss(pred, y_val[target]),
                    "weight": chosen.get(name, 0.0),
                    **rows[name],
                }
            )
        ensemble_pred = sum(w * preds[n] for n, w in chosen.items())
        row = {
            "target": target,
            "candidate": "ensemble",
            f"val_{metric}": _score(kind, classes, ensemble_pred, y_val[target]),
            "val_loss": loss(ensemble_pred, y_val[target]),
            "weight": None,
        }
        held_out[target] = (ensemble_pred, y_val[target])
        if set(oof) == set(preds):
            mixed = sum(w * oof[n] for n, w in chosen.items())
            row.update(_oof_row(kind, classes, mixed, y_all))
            held_out[target] = (mixed, y_all)
        board.append(row)
    kept = {name: NetworkMember(n.fusion, n.model) for name, n in networks.items()}
    return Ensemble(layout, processors, weights, members, board, projection, kept, searches, held_out)


def _oof_row(kind: str, classes: int, oof: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Leaderboard columns of out-of-fold predictions of the training and validation rows."""
    return {
        "folds": FOLDS,
        f"oof_{PRIMARY_METRIC[kind]}": _score(kind, classes, oof, y),
        "oof_loss": log_loss(kind)(oof, y),
    }


def _fit_member(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    kind: str,
    classes: int,
    categorical: list[int],
    seed: int,
    deadline: float | None,
    settings: LightGBMConfig,
    fitted_rows: np.ndarray,
    held_rows: np.ndarray,
) -> Member:
    """Candidate `name` fitted on `fitted_rows` of (x, y); LightGBM early-stops on `held_rows`."""
    if name == "lightgbm":
        held = (x[held_rows], y[held_rows])  # its early stopping's rows
        return LightGBMMember.fit(
            x[fitted_rows], y[fitted_rows], *held, kind, classes, categorical, seed, deadline, settings
        )
    return LinearMember.fit(x[fitted_rows], y[fitted_rows], kind, classes, categorical, seed)


def _collect(
    layout: FlatLayout, processors: dict[str, InputProcessor], batches: Iterable[Any], model: Any
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The flat table, the targets and (with `model`) the network's outputs of every batch."""
    xs, ys, outs = [], {}, {}
    with torch.inference_mode():
        for batch in batches:
            xs.append(flat_features(layout, processors, batch.inputs, batch.present))
            for t, y in batch.targets.items():
                ys.setdefault(t, []).append(y.double().numpy())
            if model is not None:
                for t, out in model.predict(batch.inputs, batch.present).items():
                    outs.setdefault(t, []).append(out.double().cpu().numpy())
    join = lambda parts: {t: np.concatenate(p) for t, p in parts.items()}  # noqa: E731
    return np.concatenate(xs), join(ys), join(outs)


def _score(kind: str, classes: int, pred: np.ndarray, y: np.ndarray) -> float:
    """The target's primary metric (accuracy, R², ...) on validation, as evaluate reports it."""
    metrics = TaskMetrics(kind, classes, None)
    truth = torch.from_numpy(y).long() if kind == "category" else torch.from_numpy(y).float()
    metrics.update(torch.from_numpy(np.asarray(pred)).float(), truth)
    return round(float(metrics.compute()[PRIMARY_METRIC[kind]]), 4)


def read_leaderboard(run_dir: str | Path) -> pd.DataFrame:
    """The leaderboard of a run folder: one row per target and candidate, then the
    ensemble. A run that trained the network alone has none (one-line error)."""
    path = Path(run_dir) / FILE
    if not Path(run_dir).is_dir():
        raise RunFolderError(f"run folder not found: {run_dir}")
    if not path.is_file():
        raise ConfigError(
            f"{run_dir} trained one candidate, the network, so it has no leaderboard; train with "
            "--preset best or --candidates neural,lightgbm,linear"
        )
    try:
        return pd.DataFrame(json.loads(path.read_text())["leaderboard"])
    except (ValueError, KeyError, TypeError) as err:
        raise RunFolderError(f"{path} is damaged: {' '.join(str(err).split())[:200]}") from None
