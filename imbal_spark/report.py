"""Writers for the comparison report: JSON, Markdown, self-contained HTML and PNG plots.

Everything here works on the report dict of :func:`imbal_spark.compare.run_comparison`
(aggregates only); nothing touches Spark except the final writes, which go through
:mod:`imbal_spark.io` so that they land inside a job's ``staged_output`` directory.

    from imbal_spark.report import write_report
    with io.staged_output(spark, out_dir, mode) as out:
        write_report(spark, out, report)
"""

from __future__ import annotations

import base64
import html
import io as _io
import math
import re

from . import io

PLOTS = {
    "distribution": "Training class counts before and after resampling",
    "roc": "ROC curves (test set)",
    "pr": "Precision-recall curves (test set)",
    "minority": "Minority class precision / recall / F1 per strategy (test set)",
}
SUMMARY_COLUMNS = [
    ("precision", "minority precision"), ("recall", "minority recall"), ("f1", "minority F1"),
    ("accuracy", "accuracy"), ("macro_f1", "macro F1"), ("balanced_accuracy", "balanced acc."),
    ("geometric_mean", "G-mean"), ("mcc", "MCC"), ("roc_auc", "ROC AUC"), ("average_precision", "avg. precision"),
]


# -- text -------------------------------------------------------------------------------------

def classification_report_text(m: dict, digits: int = 2) -> str:
    """scikit-learn's ``classification_report`` text, character for character, from a metrics dict."""
    labels = [str(c) for c in m["labels"]]
    per = {str(k): v for k, v in m["per_class"].items()}
    headers = ["precision", "recall", "f1-score", "support"]
    width = max(max(len(c) for c in labels), len("weighted avg"), digits)
    out = ("{:>{width}s} " + " {:>9}" * 4).format("", *headers, width=width) + "\n\n"
    row_fmt = "{:>{width}s} " + " {:>9.{digits}f}" * 3 + " {:>9}\n"
    for c in labels:
        p = per[c]
        out += row_fmt.format(c, p["precision"], p["recall"], p["f1"], p["support"], width=width, digits=digits)
    out += "\n"
    n = m["n"]
    out += ("{:>{width}s} " + " {:>9.{digits}}" * 2 + " {:>9.{digits}f}" + " {:>9}\n").format(
        "accuracy", "", "", m["accuracy"], n, width=width, digits=digits)
    for name, key in (("macro avg", "macro_avg"), ("weighted avg", "weighted_avg")):
        a = m[key]
        out += row_fmt.format(name, a["precision"], a["recall"], a["f1"], n, width=width, digits=digits)
    return out


def _f(v, digits=4):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


# Class labels, column names and paths are the user's: in Markdown they are code spans or
# backslash-escaped text, so a label such as `a|b` or `*x*` neither splits a table cell nor
# turns into emphasis (CommonMark, GitHub's tables).
_MD_SPECIAL = frozenset("\\`*_[]<>|~&")


_MD_REFS = {"\n": "&#10;", "\r": "&#13;"}  # a line break would end the line (or the table row)


def _md_text(s) -> str:
    """``s`` as literal Markdown text; edge spaces and line breaks as references (a table trims
    its cells, and a line break ends the line before any inline rule applies)."""
    s = str(s)
    core = s.strip(" ")
    lead = len(s) - len(s.lstrip(" ")) if core else len(s)
    trail = len(s) - len(s.rstrip(" ")) if core else 0
    return ("&#32;" * lead + "".join("\\" + ch if ch in _MD_SPECIAL else _MD_REFS.get(ch, ch) for ch in core)
            + "&#32;" * trail)


def _code(s, table: bool = False) -> str:
    """``s`` as one Markdown code span: a fence longer than any backtick run inside, padded where
    the content starts or ends with a backtick or with spaces at both ends (CommonMark strips one);
    in a table cell a pipe escaped, as GitHub's tables need even inside code."""
    s = str(s)
    if "\n" in s or "\r" in s:  # a code span cannot hold a line break: literal text instead
        return _md_text(s)
    if not s:
        return "` `"
    fence = "`" * (max((len(r) for r in re.findall("`+", s)), default=0) + 1)
    pad = " " if s[:1] == "`" or s[-1:] == "`" or (s[:1] == " " and s[-1:] == " " and s.strip(" ")) else ""
    return fence + pad + (s.replace("|", "\\|") if table else s) + pad + fence


def _fenced(text: str) -> list:
    """``text`` as a fenced code block whose fence no line of it can close."""
    fence = "`" * max(3, max((len(r) for r in re.findall("`+", text)), default=0) + 1)
    return [fence, text, fence]


def _counts(d: dict) -> str:
    return " / ".join(f"{v:,}" for v in d.values())


def _extra_rows(m: dict) -> list:
    rows = [("balanced accuracy", m["balanced_accuracy"]), ("geometric mean", m["geometric_mean"]),
            ("Matthews corr.", m["mcc"])]
    b = m.get("binary")
    if b:
        rows += [(f"ROC AUC (class {b['pos_label']})", b["roc_auc"]),
                 (f"average precision (class {b['pos_label']})", b["average_precision"])]
    rows += [(f"specificity of class {c}", v["specificity"]) for c, v in m["per_class"].items()]
    return rows


def markdown(report: dict, plots: dict | None = None) -> str:
    """The report as Markdown; ``plots`` maps plot names to file names next to it."""
    lines = [f"# Class-imbalance strategy comparison: {report['model']}", ""]
    lines += _intro_lines(report)
    lines += ["", "## Summary", ""]
    cols = ["strategy", "train counts"] + [h for _, h in SUMMARY_COLUMNS]
    has_thr = any("threshold" in r for r in report["summary"])
    if has_thr:
        cols += ["threshold", "F1 @ threshold"]
    lines.append("| " + " | ".join(cols) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(cols) - 1)) + "|")
    for r in report["summary"]:
        cells = [_code(r["strategy"], table=True), _counts(r["train_counts"])] + [_f(r.get(k)) for k, _ in SUMMARY_COLUMNS]
        if has_thr:
            cells += [_f(r.get("threshold")), _f(r.get("f1_at_threshold"))]
        lines.append("| " + " | ".join(cells) + " |")
    minority = report["summary"][0]["minority_class"] if report["summary"] else ""
    lines += ["", f"Minority class: {_code(minority)}. Class counts are listed in class order "
                  f"({', '.join(map(_md_text, report['classes']))}).", ""]
    if plots:
        lines += ["## Plots", ""]
        for name, fname in plots.items():
            lines += [f"![{PLOTS.get(name, name)}]({fname})", ""]
    for name, r in report["strategies"].items():
        m = r["metrics"]
        lines += [f"## Strategy {_code(name)}", "",
                  f"Training rows per class: {_counts(r['train_counts'])}"
                  + (f"; class weights: {', '.join(f'{_md_text(k)}: {v:.4g}' for k, v in r['class_weights'].items())}"
                     if r.get("class_weights") else ""), "",
                  *_fenced(classification_report_text(m).rstrip("\n")), "",
                  "| metric | value |", "|---|---:|"]
        lines += [f"| {_md_text(k)} | {_f(v)} |" for k, v in _extra_rows(m)]
        lines += ["", "Confusion matrix (rows: true, columns: predicted):", "",
                  "| true \\ pred | " + " | ".join(map(_md_text, m["labels"])) + " |",
                  "|---|" + "---:|" * len(m["labels"])]
        for lab, row in zip(m["labels"], m["confusion_matrix"]):
            lines.append(f"| **{_md_text(lab)}** | " + " | ".join(f"{v:,}" for v in row) + " |")
        thr = r.get("threshold")
        if thr:
            lines += [""] + _threshold_text(thr, report)
            if thr.get("test_metrics"):
                lines += ["", *_fenced(classification_report_text(thr["test_metrics"]).rstrip("\n"))]
        ill = m["zero_division"]["ill_defined"] + (m.get("binary") or {}).get("ill_defined", [])
        if ill:
            lines += ["", "Ill-defined (reported as 0.0, scikit-learn's zero_division=0): " + "; ".join(map(_md_text, ill))]
        lines.append("")
    lines += ["## Conventions", ""] + [f"- **{k}**: {_md_text(v)}" for k, v in report["conventions"].items()]
    if report.get("timings_s"):
        lines += ["", "## Timings (s)", ""] + [f"- {k}: {v:.2f}" for k, v in report["timings_s"].items()]
    return "\n".join(lines) + "\n"


def _intro_lines(report):
    d = report["data"]
    params = dict(report.get("model_params") or {})
    if not params and report.get("strategies"):  # show what the defaults resolved to
        first = next(iter(report["strategies"].values()))
        params = {k: v for k, v in first.get("model", {}).get("params", {}).items()
                  if not (k == "regParam" and "C" in first["model"]["params"])}
    params = ", ".join(f"{k}={v}" for k, v in params.items()) or "MLlib defaults"
    out = [f"- Label column {_code(report['label_col'])}, classes {', '.join(map(_md_text, report['classes']))}"
           + (f"; positive (minority) class {_code(report['pos_label'])}" if report.get("pos_label") else ""),
           f"- Training rows {d['train_rows']:,} ({_counts(d['train_counts'])}), test rows "
           f"{d['test_rows']:,} ({_counts(d['test_counts'])})",
           f"- Model {_code(report['model'])} ({_md_text(params)}); features: {len(report['features']['numeric'])} numeric"
           + (f", {len(report['features']['categorical'])} categorical" if report['features']['categorical'] else "")
           + (", standardised" if report['features'].get('scale') else "")]
    if report.get("source"):
        out.insert(0, f"- Data: {_md_text(report['source'])}")
    v = d.get("validation")
    if v:
        out.append(f"- Decision threshold chosen on a validation split ({v['validation_size']:.0%} of the "
                   f"training rows: {_counts(v['validation_counts'])}) by {v['criterion']}")
    return out


def _threshold_text(thr, report):
    if thr.get("threshold") is None:
        return [f"Threshold: {thr.get('note', 'none found')}."]
    v = thr["validation"]
    return [f"Tuned threshold **{thr['threshold']:.4f}** ({thr['criterion']} on the validation rows: "
            f"precision {v['precision']:.4f}, recall {v['recall']:.4f}, F1 {v['f1']:.4f}). "
            f"Test metrics at that threshold:"]


# -- plots ------------------------------------------------------------------------------------

def make_plots(report: dict) -> dict:
    """``{name: PNG bytes}`` rendered with matplotlib's Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    strategies = list(report["strategies"])
    colors = plt.get_cmap("tab10").colors
    out = {}

    def png(fig):
        buf = _io.BytesIO()
        fig.tight_layout()
        fig.savefig(buf, format="png", dpi=110)
        plt.close(fig)
        return buf.getvalue()

    # class distribution before / after resampling
    classes = report["classes"]
    groups = ["original"] + strategies
    counts = [report["data"]["train_counts"]] + [report["strategies"][s]["train_counts"] for s in strategies]
    fig, ax = plt.subplots(figsize=(10, 3.6))
    w = 0.8 / len(classes)
    for j, c in enumerate(classes):
        xs = [i + (j - (len(classes) - 1) / 2) * w for i in range(len(groups))]
        ys = [cnt.get(c, 0) for cnt in counts]
        bars = ax.bar(xs, ys, w, label=f"class {c}", color=colors[j % 10])
        ax.bar_label(bars, labels=[f"{y:,}" for y in ys], fontsize=7, padding=1)
    all_counts = [v for cnt in counts for v in cnt.values() if v]
    if all_counts and max(all_counts) / min(all_counts) > 50:
        ax.set_yscale("log")
    ax.set_xticks(range(len(groups)), groups, fontsize=8)
    ax.set_ylabel("training rows")
    ax.set_title(PLOTS["distribution"], fontsize=10)
    ax.legend(fontsize=8)
    out["distribution"] = png(fig)

    if report.get("binary"):
        fig, ax = plt.subplots(figsize=(5.6, 4.8))
        for i, s in enumerate(strategies):
            b = report["strategies"][s]["metrics"]["binary"]
            ax.plot(b["roc_curve"]["fpr"], b["roc_curve"]["tpr"], color=colors[i % 10], lw=1.6,
                    label=f"{s} (AUC {_f(b['roc_auc'])})")
        ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_title(f"{PLOTS['roc']}, class {report['pos_label']}", fontsize=10)
        ax.legend(fontsize=8, loc="lower right")
        out["roc"] = png(fig)

        fig, ax = plt.subplots(figsize=(5.6, 4.8))
        for i, s in enumerate(strategies):
            b = report["strategies"][s]["metrics"]["binary"]
            rec, prec = b["pr_curve"]["recall"], b["pr_curve"]["precision"]
            # plotting only: extend to recall 0 at the first precision, as scikit-learn's display does
            ax.step([0.0] + rec, prec[:1] + prec, where="pre", color=colors[i % 10],
                    lw=1.6, label=f"{s} (AP {_f(b['average_precision'])})")
        first = report["strategies"][strategies[0]]["metrics"]["binary"]
        prevalence = first["positives"] / (first["positives"] + first["negatives"])
        ax.axhline(prevalence, ls="--", color="grey", lw=0.8, label=f"prevalence {prevalence:.3f}")
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_ylim(0, 1.03)
        ax.set_title(f"{PLOTS['pr']}, class {report['pos_label']}", fontsize=10)
        ax.legend(fontsize=8, loc="lower left")
        out["pr"] = png(fig)

    fig, ax = plt.subplots(figsize=(10, 3.6))
    names = [("precision", "precision"), ("recall", "recall"), ("f1", "F1")]
    w = 0.26
    for j, (k, lab) in enumerate(names):
        xs = [i + (j - 1) * w for i in range(len(strategies))]
        ys = [r[k] for r in report["summary"]]
        bars = ax.bar(xs, ys, w, label=lab, color=colors[j])
        ax.bar_label(bars, labels=[f"{y:.2f}" for y in ys], fontsize=7, padding=1)
    ax.set_xticks(range(len(strategies)), strategies, fontsize=8)
    ax.set_ylim(0, 1.25)  # headroom so that the legend never covers a bar label
    minority = report["summary"][0]["minority_class"] if report["summary"] else ""
    ax.set_title(f"{PLOTS['minority']}: class {minority}", fontsize=10)
    ax.legend(fontsize=8, ncol=3, loc="upper center")
    out["minority"] = png(fig)
    return out


# -- HTML -------------------------------------------------------------------------------------

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1100px;color:#222;line-height:1.45}
h1{font-size:22px;border-bottom:2px solid #2b6cb0;padding-bottom:6px} h2{font-size:18px;margin-top:30px;color:#2b6cb0}
h3{font-size:15px;margin:18px 0 6px} ul{padding-left:20px} code{background:#f2f4f7;padding:1px 4px;border-radius:3px}
table{border-collapse:collapse;margin:8px 0 12px;font-size:13px} th,td{padding:4px 10px;border-bottom:1px solid #e2e8f0}
th{background:#f7fafc;text-align:right;font-weight:600} td{text-align:right;font-variant-numeric:tabular-nums}
td.l,th.l{text-align:left} tr.sep td{border-top:2px solid #cbd5e0} .best{font-weight:700;color:#22543d;background:#f0fff4}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:14px} .grid img{width:100%;border:1px solid #e2e8f0;border-radius:4px}
.grid .wide{grid-column:span 2} td.nw{white-space:nowrap}
.card{border:1px solid #e2e8f0;border-radius:6px;padding:10px 16px;margin:14px 0;background:#fff}
.row{display:flex;gap:28px;flex-wrap:wrap;align-items:flex-start} .note{color:#555;font-size:12.5px}
.warn{color:#744210;background:#fffbea;padding:4px 8px;border-radius:4px;font-size:12.5px}
"""


def _e(s) -> str:
    return html.escape(str(s))


def _cr_table(m: dict) -> str:
    """The classification report as an HTML table in scikit-learn's layout."""
    rows = ["<table><tr><th class='l'></th><th>precision</th><th>recall</th><th>f1-score</th><th>support</th></tr>"]
    for c in m["labels"]:
        p = m["per_class"][c]
        rows.append(f"<tr><td class='l'><b>{_e(c)}</b></td><td>{p['precision']:.2f}</td><td>{p['recall']:.2f}</td>"
                    f"<td>{p['f1']:.2f}</td><td>{p['support']:,}</td></tr>")
    rows.append(f"<tr class='sep'><td class='l'>accuracy</td><td></td><td></td><td>{m['accuracy']:.2f}</td><td>{m['n']:,}</td></tr>")
    for name, key in (("macro avg", "macro_avg"), ("weighted avg", "weighted_avg")):
        a = m[key]
        rows.append(f"<tr><td class='l'>{name}</td><td>{a['precision']:.2f}</td><td>{a['recall']:.2f}</td>"
                    f"<td>{a['f1']:.2f}</td><td>{m['n']:,}</td></tr>")
    return "".join(rows) + "</table>"


def _confusion_table(m: dict) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in m["labels"])
    body = "".join(f"<tr><th class='l'>{_e(c)}</th>" + "".join(f"<td>{v:,}</td>" for v in row) + "</tr>"
                   for c, row in zip(m["labels"], m["confusion_matrix"]))
    return f"<table><tr><th class='l'>true \\ predicted</th>{head}</tr>{body}</table>"


def html_report(report: dict, images: dict | None = None) -> str:
    """A single self-contained HTML page (plots embedded as data URIs)."""
    images = images or {}
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>imbal-spark: strategy comparison</title>"
             f"<style>{CSS}</style></head><body>",
             f"<h1>Class-imbalance strategy comparison &mdash; <code>{_e(report['model'])}</code></h1>",
             "<ul>" + "".join(f"<li>{_md_inline(x[2:])}</li>" for x in _intro_lines(report)) + "</ul>"]
    # summary table, best value per column highlighted
    summ = report["summary"]
    has_thr = any("threshold" in r for r in summ)
    cols = list(SUMMARY_COLUMNS) + ([("threshold", "tuned threshold"), ("f1_at_threshold", "F1 @ threshold")] if has_thr else [])
    best = {}
    for k, _ in cols:
        vals = [r.get(k) for r in summ if isinstance(r.get(k), (int, float))]
        if vals and k != "threshold":
            best[k] = max(vals)
    parts.append("<h2>Summary</h2><div style='overflow-x:auto'><table><tr><th class='l'>strategy</th><th>train counts<br><span class='note'>"
                 + " / ".join(map(_e, report["classes"])) + "</span></th>"
                 + "".join(f"<th>{_e(h)}</th>" for _, h in cols) + "</tr>")
    for r in summ:
        cells = [f"<td class='l'><code>{_e(r['strategy'])}</code></td><td class='nw'>{_counts(r['train_counts'])}</td>"]
        for k, _ in cols:
            v = r.get(k)
            cls = " class='best'" if k in best and v == best[k] and len(summ) > 1 else ""
            cells.append(f"<td{cls}>{_f(v)}</td>")
        parts.append("<tr>" + "".join(cells) + "</tr>")
    minority = summ[0]["minority_class"] if summ else ""
    parts.append(f"</table></div><p class='note'>Minority class <code>{_e(minority)}</code>; best value of each column "
                 f"in bold. Test set: {report['data']['test_rows']:,} rows, identical for every strategy.</p>")
    if images:
        parts.append("<h2>Plots</h2><div class='grid'>")
        order = [n for n in ("roc", "pr", "minority", "distribution") if n in images]
        for name in order + [n for n in images if n not in order]:
            b64 = base64.b64encode(images[name]).decode()
            wide = " class='wide'" if name in ("minority", "distribution") or len(images) < 3 else ""
            parts.append(f"<figure style='margin:0'{wide}><img alt='{_e(PLOTS.get(name, name))}' "
                         f"src='data:image/png;base64,{b64}'></figure>")
        parts.append("</div>")
    parts.append("<h2>Per strategy</h2>")
    for name, r in report["strategies"].items():
        m = r["metrics"]
        weights = ""
        if r.get("class_weights"):
            weights = "; class weights " + ", ".join(f"{_e(k)}: {v:.4g}" for k, v in r["class_weights"].items())
        parts.append(f"<div class='card'><h3>Strategy <code>{_e(name)}</code></h3>"
                     f"<p class='note'>Training rows per class: {_counts(r['train_counts'])}{weights}; "
                     f"{r.get('seconds', 0):.1f} s</p><div class='row'>"
                     f"<div><b>Classification report</b>{_cr_table(m)}</div>"
                     "<div><b>Imbalance metrics</b><table>"
                     + "".join(f"<tr><td class='l'>{_e(k)}</td><td>{_f(v)}</td></tr>" for k, v in _extra_rows(m))
                     + f"</table></div><div><b>Confusion matrix</b>{_confusion_table(m)}</div></div>")
        thr = r.get("threshold")
        if thr:
            parts.append("<p>" + _md_inline(_threshold_text(thr, report)[0]) + "</p>")
            if thr.get("test_metrics"):
                parts.append(f"<div class='row'><div>{_cr_table(thr['test_metrics'])}</div>"
                             f"<div>{_confusion_table(thr['test_metrics'])}</div></div>")
        ill = m["zero_division"]["ill_defined"] + (m.get("binary") or {}).get("ill_defined", [])
        if ill:
            parts.append("<p class='warn'>Ill-defined, reported as 0.0 (scikit-learn's zero_division=0): "
                         + "; ".join(map(_e, ill)) + "</p>")
        parts.append("</div>")
    parts.append("<h2>Conventions</h2><ul>" + "".join(
        f"<li><b>{_e(k)}</b>: {_e(v)}</li>" for k, v in report["conventions"].items()) + "</ul>")
    if report.get("timings_s"):
        parts.append("<h2>Timings</h2><table>" + "".join(
            f"<tr><td class='l'>{_e(k)}</td><td>{v:.2f} s</td></tr>" for k, v in report["timings_s"].items())
            + "</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _md_inline(s: str) -> str:
    """Our own Markdown lines as HTML: backslash escapes, code spans (CommonMark's fences) and
    **bold**; everything else escaped."""
    out, i, bold = [], 0, False
    while i < len(s):
        if s[i] == "\\" and i + 1 < len(s) and s[i + 1] in _MD_SPECIAL:
            out.append(_e(s[i + 1]))
            i += 2
        elif s[i] == "`":
            fence = re.match("`+", s[i:]).group()
            close = next((m for m in re.finditer("`+", s[i + len(fence):]) if m.group() == fence), None)
            if close is None:
                out.append(_e(fence))
                i += len(fence)
                continue
            body = s[i + len(fence):i + len(fence) + close.start()]
            if len(body) > 1 and body[0] == " " and body[-1] == " " and body.strip(" "):
                body = body[1:-1]
            out.append(f"<code>{_e(body)}</code>")
            i += len(fence) + close.end()
        elif s.startswith(("&#32;", "&#10;", "&#13;"), i):
            out.append(_e(chr(int(s[i + 2:i + 4]))))
            i += 5
        elif s.startswith("**", i):
            out.append("</b>" if bold else "<b>")
            bold = not bold
            i += 2
        else:
            out.append(_e(s[i]))
            i += 1
    return "".join(out) + ("</b>" if bold else "")


# -- writing ----------------------------------------------------------------------------------

def write_report(spark, out_dir: str, report: dict, plots: bool = True) -> dict:
    """Write ``report.json``, ``report.md``, ``report.html`` and the PNG plots into ``out_dir``
    (a directory inside ``io.staged_output``). Returns ``{file name: path}``."""
    out_dir = out_dir.rstrip("/")
    written = {}
    images = make_plots(report) if plots else {}
    files = {}
    for name, data in images.items():
        fname = f"{name}.png"
        io.write_bytes(spark, f"{out_dir}/{fname}", data)
        files[name] = fname
        written[fname] = f"{out_dir}/{fname}"
    report = {**report, "plots": files}
    io.write_json(spark, f"{out_dir}/report.json", report)
    io.write_text(spark, f"{out_dir}/report.md", markdown(report, files))
    io.write_text(spark, f"{out_dir}/report.html", html_report(report, images))
    for f in ("report.json", "report.md", "report.html"):
        written[f] = f"{out_dir}/{f}"
    return written


def summary_table(report: dict) -> str:
    """A fixed-width console table, one row per strategy (what the jobs print)."""
    cols = [("strategy", 22), ("train counts", 17), ("prec", 6), ("rec", 6), ("F1", 6), ("acc", 6),
            ("macroF1", 7), ("bal.acc", 7), ("ROC AUC", 8), ("AP", 6)]
    lines = ["  ".join(f"{h:<{w}}" if i < 2 else f"{h:>{w}}" for i, (h, w) in enumerate(cols))]
    lines.append("-" * len(lines[0]))
    for r in report["summary"]:
        vals = [r["strategy"], _counts(r["train_counts"]), r["precision"], r["recall"], r["f1"], r["accuracy"],
                r["macro_f1"], r["balanced_accuracy"], r["roc_auc"], r["average_precision"]]
        cells = []
        for i, ((h, w), v) in enumerate(zip(cols, vals)):
            if i < 2:
                cells.append(f"{v:<{w}}")
            else:
                cells.append(f"{_f(v, 4 if h == 'ROC AUC' else 2):>{w}}")
        lines.append("  ".join(cells))
    if report["summary"]:
        lines.append(f"(minority class {report['summary'][0]['minority_class']}: precision, recall, F1)")
    return "\n".join(lines)
