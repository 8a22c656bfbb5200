"""Which prior a run's streams are coded with: its prior.npy table, or the learned entropy model beside it.

entropy_model.pt next to prior.npy (bpgan-quantize's entropy stage writes it) makes every stream of the run
coded by the learned model (firmware_ref/entropy_model.py); the table stays, for the model hash and for
streams coded without it (bpgan-encode --per-channel-prior).
"""
from pathlib import Path
from typing import Union

import numpy as np

from bpgan.firmware_ref.entropy_model import LearnedPrior

from .prior import load_prior

ENTROPY_NAME = "entropy_model.pt"
StreamPrior = Union[np.ndarray, LearnedPrior]


def load_stream_prior(prior_path, learned: bool = True) -> StreamPrior:
    """prior.npy -> its table, or a LearnedPrior when entropy_model.pt lies beside it (and learned is True)."""
    table = load_prior(prior_path)
    entropy = Path(prior_path).with_name(ENTROPY_NAME)
    if not learned or not entropy.is_file():
        return table
    from ..models.entropy_net import entropy_program, load_entropy_net
    return LearnedPrior(entropy_program(load_entropy_net(entropy)), table)


def table_of(prior: StreamPrior) -> np.ndarray:
    return prior.table if isinstance(prior, LearnedPrior) else np.asarray(prior)
