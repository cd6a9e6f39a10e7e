"""Evaluation plots (matplotlib, headless): ROC, score histograms, reliability, accuracy-coverage.

    paths = save_plots(y, p, report, out_dir)
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.calibration import calibration_curve  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402


def save_plots(y, p, report: dict, out: Path) -> list[str]:
    y, p = np.asarray(y, int), np.asarray(p, float)
    th = report["thresholds"]
    paths = []

    def done(fig, name):
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        paths.append(str(out / name))

    if len(set(y.tolist())) == 2:
        fpr, tpr, _ = roc_curve(y, p)
        fig, ax = plt.subplots(figsize=(5, 4.5))
        ax.plot(fpr, tpr, lw=2, label=f"AUROC {report['metrics']['auroc']:.4f}")
        ax.axvline(0.01, ls=":", c="grey", label="1% false alarms")
        ax.set(xscale="log", xlim=(1e-3, 1), ylim=(0, 1.01), xlabel="false-alarm rate (genuine flagged)",
               ylabel="detection rate (counterfeits flagged)", title="ROC")
        ax.legend(loc="lower right")
        done(fig, "roc.png")

    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.linspace(0, 1, 41)
    ax.hist(p[y == 0], bins=bins, alpha=0.6, label="genuine", color="tab:green")
    ax.hist(p[y == 1], bins=bins, alpha=0.6, label="counterfeit", color="tab:red")
    ax.axvspan(th["threshold_genuine"], th["threshold_suspect"], color="gold", alpha=0.3, label="inconclusive band")
    ax.set(yscale="log", xlabel="calibrated probability of counterfeit", ylabel="photos", title="Scores per class")
    ax.legend()
    done(fig, "scores.png")

    fig, ax = plt.subplots(figsize=(5, 4.5))
    frac, mean = calibration_curve(y, p, n_bins=15, strategy="uniform")
    ax.plot([0, 1], [0, 1], ls=":", c="grey")
    ax.plot(mean, frac, "o-", label=f"ECE {report['metrics']['ece']:.4f}")
    ax.set(xlabel="predicted probability of counterfeit", ylabel="observed share of counterfeits",
           title="Reliability", xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left")
    done(fig, "reliability.png")

    fig, ax = plt.subplots(figsize=(5, 4))
    cov = report["accuracy_coverage"]
    ax.plot([c["coverage"] for c in cov], [c["accuracy"] for c in cov], "o-")
    ax.set(xlabel="coverage (share of photos decided)", ylabel="accuracy on decided photos",
           title="Accuracy when abstaining on the least confident", xlim=(0, 1.02))
    done(fig, "accuracy_coverage.png")
    return paths
