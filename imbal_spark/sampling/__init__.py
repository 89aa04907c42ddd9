"""Resampling of Spark DataFrames with imbalanced-learn's semantics.

``SMOTE``, ``RandomOverSampler`` and ``RandomUnderSampler`` share one design (see
:mod:`.base`): the constructor stores parameters, ``fit_resample(df)`` validates, resolves
``sampling_strategy`` into ``sampling_strategy_`` and returns the resampled DataFrame with an
``is_synthetic`` column; ``summary_`` describes the run.
"""

from .base import SYNTHETIC_COL, BaseSampler
from .random import RandomOverSampler, RandomUnderSampler
from .smote import SMOTE
from .strategy import check_sampling_strategy, normalize_strategy

SAMPLERS = {"smote": SMOTE, "random_over": RandomOverSampler, "random_under": RandomUnderSampler}

__all__ = ["SMOTE", "RandomOverSampler", "RandomUnderSampler", "BaseSampler", "SAMPLERS",
           "SYNTHETIC_COL", "check_sampling_strategy", "normalize_strategy"]
