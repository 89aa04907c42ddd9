"""imbal-spark: class-imbalance tools for Apache Spark."""

__version__ = "0.1.0"

from .errors import (ConfigError, ImbalSparkError, InputError, MissingColumnError,  # noqa: F401
                     OutputExistsError)
from .distribution import ClassDistribution, class_distribution, distribution_by  # noqa: F401

__all__ = [
    "ImbalSparkError", "ConfigError", "InputError", "MissingColumnError", "OutputExistsError",
    "ClassDistribution", "class_distribution", "distribution_by",
]
