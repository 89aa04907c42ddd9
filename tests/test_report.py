"""Report writers: scikit-learn's classification_report text reproduced character for
character, Markdown/HTML contents, self-contained HTML, PNG plots, files written."""

import base64
import json
import re

import numpy as np
import pytest
from sklearn import metrics as skm

from imbal_spark import metrics, report

PNG = b"\x89PNG\r\n\x1a\n"


def _metrics(y, p, labels):
    cm = skm.confusion_matrix(y, p, labels=labels).tolist()
    return metrics.scores_from_confusion(labels, cm)


def _binary_section(y, s):
    fpr, tpr, thr = skm.roc_curve(y, s)
    prec, rec, _ = skm.precision_recall_curve(y, s)
    return {"pos_label": "1", "positives": int(sum(y)), "negatives": int(len(y) - sum(y)),
            "roc_auc": skm.roc_auc_score(y, s), "average_precision": skm.average_precision_score(y, s),
            "roc_curve": {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "thresholds": thr.tolist()},
            "pr_curve": {"recall": rec[::-1].tolist(), "precision": prec[::-1].tolist()}, "ill_defined": []}


def _fake_report(binary=True, labels=None):
    rng = np.random.default_rng(0)
    strategies = {}
    labels = labels or ([0, 1] if binary else ["ant", "bee", "cat"])
    probs = [0.9, 0.1] if binary else [0.7, 0.2, 0.1] if len(labels) == 3 else [0.5] + [0.5 / (len(labels) - 1)] * (len(labels) - 1)
    y = rng.choice(labels, size=300, p=probs)
    for i, name in enumerate(["none", "class_weight", "smote"]):
        p = np.where(rng.random(300) < 0.8 + 0.05 * i, y, rng.choice(labels, size=300))
        m = _metrics(y, p, labels)
        m["labels"] = [str(c) for c in m["labels"]]
        m["per_class"] = {str(k): v for k, v in m["per_class"].items()}
        if binary:
            m["binary"] = _binary_section(y, np.clip(y * 0.5 + rng.random(300) * 0.7, 0, 1))
        counts = {str(c): int((y == c).sum()) for c in labels}
        strategies[name] = {"strategy": name, "train_counts": counts, "metrics": m,
                            **({"class_weights": {"0": 0.55, "1": 5.0}} if name == "class_weight" and binary else {})}
    minority = "1" if binary else str(labels[-1])
    summary = [{"strategy": n, "train_counts": r["train_counts"], "minority_class": minority,
                **{k: r["metrics"]["per_class"][minority][k] for k in ("precision", "recall", "f1")},
                "accuracy": r["metrics"]["accuracy"], "macro_f1": r["metrics"]["macro_avg"]["f1"],
                "balanced_accuracy": r["metrics"]["balanced_accuracy"], "geometric_mean": r["metrics"]["geometric_mean"],
                "mcc": r["metrics"]["mcc"], "roc_auc": r["metrics"].get("binary", {}).get("roc_auc"),
                "average_precision": r["metrics"].get("binary", {}).get("average_precision")}
               for n, r in strategies.items()]
    return {"label_col": "label", "classes": [str(c) for c in labels], "binary": binary,
            "pos_label": "1" if binary else None, "model": "logistic_regression", "model_params": {"C": 1.0},
            "features": {"numeric": ["f0", "f1"], "categorical": [], "scale": False},
            "data": {"train_rows": 300, "test_rows": 300, "train_counts": strategies["none"]["train_counts"],
                     "test_counts": strategies["none"]["train_counts"]},
            "strategies": strategies, "summary": summary, "conventions": {"zero_division": "0.0 <x> & y"}}


@pytest.mark.parametrize("labels,probs", [([0, 1], [0.9, 0.1]), (["ant", "bee", "cat"], [0.6, 0.3, 0.1]),
                                          ([3, 10, 200], [0.5, 0.45, 0.05])])
def test_classification_report_text_equals_sklearn(labels, probs):
    rng = np.random.default_rng(1)
    y = rng.choice(labels, size=500, p=probs)
    p = np.where(rng.random(500) < 0.75, y, rng.choice(labels, size=500))
    m = _metrics(y, p, labels)
    for digits in (2, 4):
        assert report.classification_report_text(m, digits) == skm.classification_report(y, p, digits=digits)


def test_markdown_has_summary_and_sklearn_layout():
    r = _fake_report()
    md = report.markdown(r, {"roc": "roc.png"})
    assert md.count("| `") == 3  # one summary row per strategy
    assert "![ROC curves (test set)](roc.png)" in md
    for name, s in r["strategies"].items():
        assert f"## Strategy `{name}`" in md
        assert report.classification_report_text(s["metrics"]).rstrip("\n") in md
    row = next(line for line in md.splitlines() if line.startswith("| `smote`")).split(" | ")
    s = r["summary"][2]
    counts = " / ".join(f"{v:,}" for v in s["train_counts"].values())
    assert row[1] == counts
    assert row[2:5] == [f"{s['precision']:.4f}", f"{s['recall']:.4f}", f"{s['f1']:.4f}"]


def test_html_is_self_contained_and_escaped():
    r = _fake_report()
    images = report.make_plots(r)
    assert set(images) == {"distribution", "roc", "pr", "minority"}
    assert all(v.startswith(PNG) for v in images.values())
    page = report.html_report(r, images)
    srcs = re.findall(r"src='([^']*)'", page)
    assert len(srcs) == 4 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert all(base64.b64decode(s.split(",", 1)[1]).startswith(PNG) for s in srcs)
    assert "href=" not in page and "<script" not in page  # nothing fetched from elsewhere
    assert "0.0 &lt;x&gt; &amp; y" in page  # text is escaped
    assert page.count("<div class='card'>") == 3
    # best value of a column is highlighted
    best_recall = max(s["recall"] for s in r["summary"])
    assert f"<td class='best'>{best_recall:.4f}</td>" in page


def test_multiclass_report_has_no_curves():
    r = _fake_report(binary=False)
    images = report.make_plots(r)
    assert set(images) == {"distribution", "minority"}
    text = report.classification_report_text(r["strategies"]["none"]["metrics"])
    assert text.splitlines()[2].split()[0] == "ant"
    assert "ROC" not in report.summary_table(r).splitlines()[2]


def test_write_report_files(spark, tmp_path):
    r = _fake_report()
    out = tmp_path / "rep"
    written = report.write_report(spark, str(out), r)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["report.json", "report.md", "report.html", "distribution.png", "roc.png", "pr.png", "minority.png"])
    assert set(written) == {p.name for p in out.iterdir()}
    back = json.loads((out / "report.json").read_text())
    assert back["plots"] == {"distribution": "distribution.png", "roc": "roc.png", "pr": "pr.png",
                             "minority": "minority.png"}
    assert back["strategies"]["smote"]["metrics"]["accuracy"] == pytest.approx(r["strategies"]["smote"]["metrics"]["accuracy"])
    assert (out / "roc.png").read_bytes().startswith(PNG)
    assert "(roc.png)" in (out / "report.md").read_text()  # Markdown links the PNGs relatively


ODD_LABELS = ["a|b", "x`y", "*z*", "<i>&amp;", "l1\nl2", " s "]


def _texts(html_text, tag):
    """The text of every ``tag`` element of an HTML fragment, tags inside it dropped."""
    from html.parser import HTMLParser

    class P(HTMLParser):
        def __init__(self):
            super().__init__(convert_charrefs=True)
            self.depth, self.found = 0, []

        def handle_starttag(self, t, a):
            if t == tag:
                self.depth += 1
                self.found.append("")

        def handle_endtag(self, t):
            if t == tag:
                self.depth -= 1

        def handle_data(self, d):
            if self.depth:
                self.found[-1] += d
    p = P()
    p.feed(html_text)
    return p.found


def test_markdown_keeps_odd_labels_and_names_literal():
    """Labels and a label column holding pipes, backticks, emphasis marks, HTML and edge spaces:
    a CommonMark + table renderer (markdown-it-py, the oracle) shows each as it is, in its own cell."""
    from markdown_it import MarkdownIt

    r = _fake_report(binary=False, labels=ODD_LABELS)
    r["label_col"] = "lab`el|x"
    r["strategies"]["none"]["class_weights"] = {lab: 1.5 for lab in ODD_LABELS}
    page = MarkdownIt("commonmark").enable("table").render(report.markdown(r))
    heads = _texts(page, "th")
    for lab in ODD_LABELS:  # every strategy's confusion matrix has one header cell per label
        assert heads.count(lab) == 3, (lab, heads)
    strong = _texts(page, "strong")
    for lab in ODD_LABELS:  # and one bold row header per label
        assert strong.count(lab) == 3, (lab, strong)
    cells = _texts(page, "td")
    assert cells.count("specificity of class a|b") == 3 and cells.count("specificity of class  s ") == 3
    codes = _texts(page, "code")
    assert "lab`el|x" in codes and ODD_LABELS[-1] in codes  # the label column; the minority class
    items = _texts(page, "li")
    assert items[0].startswith("Label column lab`el|x, classes " + ", ".join(ODD_LABELS))
    assert "class weights: " + ", ".join(f"{lab}: 1.5" for lab in ODD_LABELS) in page.replace("&amp;", "&") \
        .replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"')
    # the HTML report renders the same intro line itself
    own = report.html_report(r, {})
    assert _texts(own, "li")[0] == items[0]
    assert "lab`el|x" in _texts(own, "code")


@pytest.mark.parametrize("text", ["", " \t ", "a\nb", "x\r\n# h", "``x", " a ", "   ", "a|b", "`"])
def test_a_code_span_or_literal_text_shows_exactly_the_text(text):
    """Each name goes into a Markdown line as a code span (or, holding a line break, as
    literal text): a CommonMark renderer (markdown-it-py, the oracle) and the HTML report's own
    converter both show exactly the text, in one list item."""
    from markdown_it import MarkdownIt

    line = f"- before {report._code(text)} after"
    page = MarkdownIt("commonmark").render(line)
    items = _texts(page, "li")
    want = "before " + (text or " ") + " after"
    assert items == [want], (line, page)
    assert _texts("<li>" + report._md_inline(line[2:]) + "</li>", "li") == [want]
