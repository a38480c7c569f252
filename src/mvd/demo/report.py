"""The demo's results: a mean ± std table (Markdown + JSON) and one PNG figure."""
from __future__ import annotations

import json
import statistics
from pathlib import Path

STUDENT_LABELS = {
    "image": "MVD, image teacher",
    "video": "MVD, video teacher",
    "both": "MVD, co-teaching",
    "pixel": "VideoMAE pixels (baseline)",
}
COLUMNS = (("appearance", "appearance top-1 (%)"), ("motion", "motion top-1 (%)"),
           ("similarity", "cross-frame similarity"))


def mean_std(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    return mean, statistics.stdev(values) if len(values) > 1 else 0.0


def _cell(values: list[float], digits: int) -> str:
    mean, std = mean_std(values)
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if len(values) > 1 else f"{mean:.{digits}f}"


def markdown_table(results: dict) -> str:
    seeds = len(results["seeds"])
    header = "| student | " + " | ".join(title for _, title in COLUMNS) + " |"
    lines = [header, "|---" * (len(COLUMNS) + 1) + "|"]
    for name, metrics in results["students"].items():
        cells = [_cell(metrics[key], 3 if key == "similarity" else 1) for key, _ in COLUMNS]
        lines.append(f"| {STUDENT_LABELS.get(name, name)} | " + " | ".join(cells) + " |")
    for name, metrics in results.get("teachers", {}).items():
        cells = [_cell(metrics[key], 3 if key == "similarity" else 1) if key in metrics else "-"
                 for key, _ in COLUMNS]
        lines.append(f"| teacher: {name} (stage 1, trained once) | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Mean ± std over {seeds} seed(s) {results['seeds']}; linear probe on frozen "
                 "features, multi-view test; similarity = mean cosine similarity of the same "
                 "position across temporal slots (lower = more temporal dynamics).")
    return "\n".join(lines)


def write_report(results: dict, out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "results.json", "markdown": out_dir / "results.md"}
    paths["json"].write_text(json.dumps(results, indent=2))
    paths["markdown"].write_text("# mvd demo results\n\n" + markdown_table(results) + "\n")
    png = plot(results, out_dir / "results.png")
    if png:
        paths["plot"] = png
    return paths


def plot(results: dict, path: Path):
    """Bars of both tasks per student (± std) and the similarity-vs-gap curves."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    students = list(results["students"])
    fig, (bars, curves) = plt.subplots(1, 2, figsize=(12, 4.2))
    width = 0.38
    for offset, (task, colour) in zip((-width / 2, width / 2), (("appearance", "#4C72B0"), ("motion", "#DD8452"))):
        stats = [mean_std(results["students"][s][task]) for s in students]
        bars.bar([i + offset for i in range(len(students))], [m for m, _ in stats], width,
                 yerr=[s for _, s in stats], capsize=3, label=f"{task} task", color=colour)
    bars.set_xticks(range(len(students)))
    bars.set_xticklabels([STUDENT_LABELS.get(s, s).replace(", ", "\n") for s in students], fontsize=8)
    bars.set_ylabel("linear-probe top-1 (%)")
    bars.set_title("Students on a spatial and a temporal task")
    bars.legend(fontsize=8)
    models = {**{f"student: {STUDENT_LABELS.get(k, k)}": v for k, v in results["students"].items()},
              **{f"teacher: {k}": v for k, v in results.get("teachers", {}).items()}}
    for label, metrics in models.items():
        curve = metrics.get("similarity_curve")
        if curve:
            style = "--" if label.startswith("teacher") else "-"
            curves.plot(range(1, len(curve) + 1), curve, style, marker="o", label=label)
    gaps = max((len(m.get("similarity_curve") or []) for m in models.values()), default=0)
    curves.set_xticks(range(1, gaps + 1))
    curves.set_xlabel("temporal gap (tubelet slots)")
    curves.set_ylabel("cosine similarity, same position")
    curves.set_title("Cross-frame feature similarity")
    curves.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
