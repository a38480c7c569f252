"""The demo's results: mean ± std tables, paired differences across seeds (Markdown + JSON) and
one PNG figure."""
from __future__ import annotations

import itertools
import json
import statistics
from pathlib import Path

TASKS = ("appearance", "motion")
PROTOCOLS = (("finetune", "fine-tuned"), ("probe", "linear probe"))


def mean_std(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    return mean, statistics.stdev(values) if len(values) > 1 else 0.0


def _cell(values: list[float], digits: int = 1) -> str:
    mean, std = mean_std(values)
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if len(values) > 1 else f"{mean:.{digits}f}"


def _label(results: dict, kind: str) -> str:
    return results.get("labels", {}).get(kind, kind)


def main_table(results: dict) -> str:
    head = ["model"] + [f"{task}, {title}" for _, title in PROTOCOLS for task in TASKS] + \
        ["cross-frame similarity"]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for kind, m in results["students"].items():
        cells = [_cell(m[p][t]) for p, _ in PROTOCOLS for t in TASKS] + [_cell(m["similarity"], 3)]
        lines.append(f"| {_label(results, kind)} | " + " | ".join(cells) + " |")
    for kind, m in results.get("teachers", {}).items():
        cells = ["-"] * len(TASKS) + [_cell(m["probe"][t]) for t in TASKS] + [_cell(m["similarity"], 3)]
        lines.append(f"| teacher: {kind} (stage 1, trained once) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paired_differences(results: dict, protocol: str = "finetune") -> dict[str, dict]:
    """Per pair of students and task: the per-seed differences (first minus second)."""
    students = list(results["students"])
    pairs = {}
    for a, b in itertools.combinations(students, 2):
        ma, mb = results["students"][a][protocol], results["students"][b][protocol]
        pairs[f"{a} - {b}"] = {t: [x - y for x, y in zip(ma[t], mb[t])] for t in TASKS}
    return pairs


def differences_table(results: dict, protocol: str = "finetune") -> str:
    lines = ["| pair (first − second) | " + " | ".join(f"{t}: mean ± std of Δ (wins)" for t in TASKS) + " |",
             "|---" * (len(TASKS) + 1) + "|"]
    for pair, deltas in paired_differences(results, protocol).items():
        a, b = pair.split(" - ")
        cells = []
        for task in TASKS:
            d = deltas[task]
            wins = sum(x > 0 for x in d)
            cells.append(f"{_cell(d):>13} ({wins}/{len(d)})")
        lines.append(f"| {_label(results, a)} − {_label(results, b)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def controls_text(results: dict) -> str:
    c = results.get("controls") or {}
    if not c:
        return ""
    chance = 100 / results["data"]["classes"][c["task"]] if results.get("data") else None
    parts = [f"{name} frames {c[name]:.1f}" for name in ("natural", "shuffled", "single") if name in c]
    return (f"Frame-order control ({_label(results, c['student'])}, seed {c['seed']}, fine-tuned and "
            f"tested on {c['task']}): " + ", ".join(parts) +
            (f"; chance {chance:.1f}." if chance else "."))


def markdown_table(results: dict) -> str:
    seeds = len(results["seeds"])
    data = results.get("data") or {}
    splits = data.get("splits", {})
    lines = [main_table(results), "",
             f"Top-1 (%) on {splits.get('test', '?')} held-out test clips, mean ± std over "
             f"{seeds} seed(s) {results['seeds']}. Fine-tuned: end-to-end fine-tuning, multi-view "
             "test. Linear probe: frozen features. Similarity: mean cosine similarity of the same "
             "position across temporal slots (lower = features that change over time).",
             ""]
    if seeds > 1:
        lines += ["Paired differences of fine-tuned top-1 across seeds (same seed, same data; "
                  "wins = seeds where the first is higher):", "", differences_table(results), ""]
    control = controls_text(results)
    if control:
        lines += [control, ""]
    return "\n".join(lines)


def write_report(results: dict, out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    results = {**results, "paired_differences": {p: paired_differences(results, p) for p, _ in PROTOCOLS}}
    paths = {"json": out_dir / "results.json", "markdown": out_dir / "results.md"}
    paths["json"].write_text(json.dumps(results, indent=2))
    paths["markdown"].write_text("# mvd demo results\n\n" + markdown_table(results) + "\n")
    png = plot(results, out_dir / "results.png")
    if png:
        paths["plot"] = png
    else:
        print("results.png skipped: matplotlib is not installed (pip install matplotlib)")
    return paths


def plot(results: dict, path: Path):
    """Fine-tuned and probe top-1 per student and task (± std), and the similarity curves."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    students = list(results["students"])
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6), gridspec_kw={"width_ratios": [1.2, 1.2, 1]})
    colours = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860")
    width = 0.8 / len(students)
    chance = (results.get("data") or {}).get("classes", {})
    for ax, (protocol, title) in zip(axes[:2], PROTOCOLS):
        for i, kind in enumerate(students):
            stats = [mean_std(results["students"][kind][protocol][t]) for t in TASKS]
            xs = [k + (i - (len(students) - 1) / 2) * width for k in range(len(TASKS))]
            ax.bar(xs, [m for m, _ in stats], width, yerr=[s for _, s in stats], capsize=2,
                   label=_label(results, kind), color=colours[i % len(colours)])
        for k, task in enumerate(TASKS):
            if task in chance:
                ax.hlines(100 / chance[task], k - 0.45, k + 0.45, colors="grey", linestyles=":")
        ax.set_xticks(range(len(TASKS)))
        ax.set_xticklabels([f"{t}\n(chance {100 / chance[t]:.1f}%)" if t in chance else t for t in TASKS])
        ax.set_ylabel("top-1 (%)")
        ax.set_ylim(0, 100)
        ax.set_title(f"{title} (mean ± std, {len(results['seeds'])} seeds)")
    axes[0].legend(fontsize=7, loc="upper left")
    curves = axes[2]
    models = {**{_label(results, k): v for k, v in results["students"].items()},
              **{f"teacher: {k}": v for k, v in results.get("teachers", {}).items()}}
    for label, metrics in models.items():
        curve = metrics.get("similarity_curve")
        if curve:
            curves.plot(range(1, len(curve) + 1), curve, "--" if label.startswith("teacher") else "-",
                        marker="o", label=label)
    gaps = max((len(m.get("similarity_curve") or []) for m in models.values()), default=0)
    curves.set_xticks(range(1, gaps + 1))
    curves.set_xlabel("temporal gap (tubelet slots)")
    curves.set_ylabel("cosine similarity, same position")
    curves.set_title("Cross-frame feature similarity")
    curves.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
