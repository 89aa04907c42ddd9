"""Class distribution of a labelled data set.

    spark-submit jobs/class_distribution.py --input PATH --label-col COL --output DIR [--by COL]

Writes DIR/distribution.json (and DIR/by_<COL>/ as Parquet with --by) and prints a table.
"""

from imbal_spark import config, io
from imbal_spark.cli import run
from imbal_spark.distribution import class_distribution, distribution_by
from imbal_spark.progress import Timings, setup_logging
from imbal_spark.session import get_spark

KEYS = ["input", "input_format", "label_col", "output", "by", "mode", "spark", "app_name", "log_level"]


def main(argv):
    p = config.parser("class_distribution", KEYS, __doc__)
    cfg = config.resolve(p, argv, required=["input", "label_col", "output"])
    setup_logging(cfg["log_level"])
    io.precheck([cfg["input"]], cfg["output"], cfg["mode"], cfg.get("spark"))
    spark = get_spark(cfg["app_name"] or "imbal-spark class distribution", cfg["spark"])
    t = Timings()
    try:
        io.check_destination(spark, cfg["output"], cfg["mode"])
        with t.step(spark, "read input"):
            df = io.read_table(spark, cfg["input"], cfg["input_format"])
            io.require_columns(df, [cfg["label_col"]], "label column")
        with t.step(spark, "class distribution"):
            dist = class_distribution(df, cfg["label_col"])
            if dist.total_rows == 0:
                raise io.InputError(f"input {cfg['input']!r} has no rows; nothing to do")
        print(dist.table(), flush=True)
        with io.staged_output(spark, cfg["output"], cfg["mode"]) as out:
            if cfg["by"]:
                with t.step(spark, f"distribution by {cfg['by']}"):
                    io.write_parquet(distribution_by(df, cfg["label_col"], cfg["by"]), f"{out}/by_{cfg['by']}")
            report = {"input": cfg["input"], **dist.to_dict(), "timings_s": dict(t)}
            if cfg["by"]:
                report["by_path"] = f"{cfg['output'].rstrip('/')}/by_{cfg['by']}"
            io.write_json(spark, f"{out}/distribution.json", report)
    finally:
        spark.stop()


if __name__ == "__main__":
    run(main)
