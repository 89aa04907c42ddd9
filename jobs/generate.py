"""Generate labelled, imbalanced example data with the executors (or the reference data set).

    spark-submit jobs/generate.py --rows 10000000 --n-features 20 --weights 0.9,0.1 --output DIR
    spark-submit jobs/generate.py --reference --output DIR     # DIR/train, DIR/test

Deterministic for a seed whatever --partitions is; the driver never holds the rows.
"""

from imbal_spark import config, datagen, io
from imbal_spark.cli import run
from imbal_spark.progress import Timings, setup_logging
from imbal_spark.session import get_spark

KEYS = ["rows", "n_features", "informative", "weights", "classes", "seed", "partitions",
        "reference", "output", "mode", "partition_by", "spark", "app_name", "log_level"]


def main(argv):
    p = config.parser("generate", KEYS, __doc__)
    cfg = config.resolve(p, argv, required=["output"])
    setup_logging(cfg["log_level"])
    if not cfg["reference"]:
        if cfg["rows"] is None:
            raise config.ConfigError("missing required setting 'rows': give --rows N (or --reference)")
        weights = datagen.check_params(cfg["rows"], cfg["n_features"], cfg["informative"],
                                       cfg["weights"], cfg["classes"])
    io.precheck([], cfg["output"], cfg["mode"], cfg.get("spark"))
    spark = get_spark(cfg["app_name"] or "imbal-spark generate", cfg["spark"])
    t = Timings()
    try:
        with io.staged_output(spark, cfg["output"], cfg["mode"]) as out:
            if cfg["reference"]:
                with t.step(spark, "write reference data"):
                    train, test = datagen.reference_dataframes(spark)
                    io.write_parquet(train, f"{out}/train")
                    io.write_parquet(test, f"{out}/test")
                    io.write_json(spark, f"{out}/reference.json",
                                  {"make_classification": datagen.REFERENCE,
                                   "train_test_split": {**datagen.REFERENCE_SPLIT, "stratify": "y"},
                                   "train_rows": 700, "test_rows": 300})
            else:
                with t.step(spark, f"generate {cfg['rows']:,} rows"):
                    df = datagen.generate(spark, cfg["rows"], cfg["n_features"], cfg["informative"],
                                          weights, cfg["classes"], cfg["seed"], cfg["partitions"])
                    io.write_parquet(df, out, cfg["partition_by"])
    finally:
        spark.stop()


if __name__ == "__main__":
    run(main)
