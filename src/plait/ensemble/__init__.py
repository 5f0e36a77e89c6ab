"""Candidates beside the network and their weighted ensemble (`--candidates`, preset best).

features.py   a batch's vector inputs as one flat table (NaN where missing)
members.py    LightGBM and a linear probe on that table; saved without pickle
selection.py  greedy ensemble selection with replacement (Caruana 2004)
networks.py   second networks: the run's network with another fusion, saved as safetensors
ensemble.py   fit the candidates, weight them, combine their predictions; save, load
"""

from plait.ensemble.ensemble import (
    NEURAL,
    Ensemble,
    beside_network,
    check_candidates,
    fit_ensemble,
    read_leaderboard,
    second_networks,
    servable,
)

__all__ = [
    "NEURAL",
    "Ensemble",
    "beside_network",
    "check_candidates",
    "fit_ensemble",
    "read_leaderboard",
    "second_networks",
    "servable",
]
