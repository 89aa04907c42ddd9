"""The main job: the whole imbal-spark flow on one data set.

    spark-submit jobs/pipeline.py --input PATH --label-col label --output DIR
    python jobs/pipeline.py --output out/example          # built-in example data

Steps: class distribution of the input -> DIR/distribution.json.
"""

from imbal_spark import config, datagen, io
from imbal_spark.cli import run
from imbal_spark.distribution import class_distribution
from imbal_spark.progress import Timings, setup_logging
from imbal_spark.session import get_spark

KEYS = ["input", "input_format", "label_col", "output", "mode", "rows", "seed",
        "spark", "app_name", "log_level"]
EXAMPLE_ROWS = 100_000


def main(argv):
    p = config.parser("pipeline", KEYS, __doc__)
    cfg = config.resolve(p, argv, required=["output"])
    setup_logging(cfg["log_level"])
    io.precheck([cfg["input"]], cfg["output"], cfg["mode"])
    spark = get_spark(cfg["app_name"] or "imbal-spark pipeline", cfg["spark"])
    t = Timings()
    try:
        io.check_destination(spark, cfg["output"], cfg["mode"])
        with t.step(spark, "read input"):
            if cfg["input"]:
                df = io.read_table(spark, cfg["input"], cfg["input_format"])
                source = cfg["input"]
            else:
                rows = cfg["rows"] or EXAMPLE_ROWS
                df = datagen.generate(spark, rows, 20, 2, [0.9, 0.1], 2, cfg["seed"])
                source = f"generated example data ({rows:,} rows, 20 features, 90/10)"
            io.require_columns(df, [cfg["label_col"]], "label column")
        with t.step(spark, "class distribution"):
            dist = class_distribution(df, cfg["label_col"])
            if dist.total_rows == 0:
                raise io.InputError(f"input {source!r} has no rows; nothing to do")
        print(f"input: {source}\n{dist.table()}", flush=True)
        with io.staged_output(spark, cfg["output"], cfg["mode"]) as out:
            io.write_json(spark, f"{out}/distribution.json",
                          {"input": source, **dist.to_dict(), "timings_s": dict(t)})
    finally:
        spark.stop()


if __name__ == "__main__":
    run(main)
