"""report.md and PNG plots for a comparison: the tables docs/results.md quotes come from here."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from .metrics import significance
from .synthetic import DATASET_NAME

SYNTHETIC = DATASET_NAME  # "passkey-4096": groups task and length
HEADLINE_METRICS = {"cuad": "span_hit@10"}  # datasets not judged by nDCG@10 (synthetic tasks: Acc@1)


def headline_metric(dataset: str) -> str:
    """The metric a dataset is judged by: Acc@1 on synthetic tasks (= Recall@1); for CUAD the
    passage-level span hit, because its 15 clause questions are asked of every contract, so the
    document ranking says little; nDCG@10 otherwise."""
    if SYNTHETIC.match(dataset):
        return "recall@1"
    return HEADLINE_METRICS.get(dataset, "ndcg@10")


def headline(cell) -> float:
    return cell.metrics.get(headline_metric(cell.dataset), 0.0)


def table(cells) -> str:
    """Conditions × datasets, headline metric in %, synthetic lengths averaged per task."""
    columns: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for c in cells:
        m = SYNTHETIC.match(c.dataset)
        column = f"{m.group(1)} (avg Acc@1)" if m else f"{c.dataset} {headline_metric(c.dataset)}"
        if headline_metric(c.dataset) in c.metrics:
            columns[column][c.condition].append(headline(c))
    conditions = list(dict.fromkeys(c.condition for c in cells))
    names = list(columns)
    cost = defaultdict(lambda: [0.0, 0, 0, 0.0])
    for c in cells:
        cost[c.condition][0] += c.cost["encode_seconds"]
        cost[c.condition][1] += c.cost["index_bytes"]
        cost[c.condition][2] = max(cost[c.condition][2], c.cost["query_ms_p95"])
        cost[c.condition][3] = max(cost[c.condition][3], c.cost.get("peak_memory_mb") or 0.0)
    lines = ["| condition | " + " | ".join(names) + " | encode s | index MB | query p95 ms | peak extra MB |",
             "|---|" + "---|" * (len(names) + 4)]
    for cond in conditions:
        vals = []
        for name in names:
            v = columns[name].get(cond)
            vals.append(f"{100 * sum(v) / len(v):.1f}" if v else "–")
        s, b, p, m = cost[cond]
        lines.append(f"| {cond} | " + " | ".join(vals) + f" | {s:.0f} | {b / 1e6:.1f} | {p:.0f} | {m:.0f} |")
    return "\n".join(lines)


def length_table(cells) -> str:
    rows = defaultdict(dict)
    lengths = set()
    for c in cells:
        m = SYNTHETIC.match(c.dataset)
        if m:
            rows[(m.group(1), c.condition)][int(m.group(2))] = headline(c)
            lengths.add(int(m.group(2)))
    if not rows:
        return ""
    lengths = sorted(lengths)
    lines = ["| task · condition | " + " | ".join(f"{n}" for n in lengths) + " |", "|---|" + "---|" * len(lengths)]
    for (task, cond), values in sorted(rows.items()):
        lines.append(f"| {task} · {cond} | " + " | ".join(f"{100 * values[n]:.0f}" if n in values else "–"
                                                         for n in lengths) + " |")
    return "\n".join(lines)


def plot_lengths(cells, path: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = defaultdict(dict)
    for c in cells:
        m = SYNTHETIC.match(c.dataset)
        if m:
            series[(m.group(1), c.condition)][int(m.group(2))] = 100 * headline(c)
    if not series:
        return False
    tasks = sorted({t for t, _ in series})
    fig, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for (t, cond), values in sorted(series.items()):
            if t == task:
                xs = sorted(values)
                ax.plot(xs, [values[x] for x in xs], marker="o", label=cond)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("document length (tokens)")
        ax.set_ylabel("Acc@1 (%)")
        ax.set_title(task)
        ax.set_ylim(-2, 102)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_cost(cells, path: Path, key: str, label: str) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = defaultdict(lambda: [0.0, 0.0, 0])
    for c in cells:
        if not SYNTHETIC.match(c.dataset) and headline_metric(c.dataset) in c.metrics:
            p = points[c.condition]
            p[0] += c.cost[key] or 0
            p[1] += headline(c)
            p[2] += 1
    if not points:
        return False
    fig, ax = plt.subplots(figsize=(6, 4))
    for cond, (x, q, n) in points.items():
        scale = 1e6 if key == "index_bytes" else 1
        ax.scatter(x / scale, 100 * q / n)
        ax.annotate(cond, (x / scale, 100 * q / n), fontsize=8, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel(label)
    ax.set_ylabel("mean over real datasets (%)\nnDCG@10; CUAD: span hit@10")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_report(cells, out: Path, env: dict) -> None:
    parts = ["# longrag compare", "",
             f"Encoder: {cells[0].meta['encoder'] if cells else '?'}; {env['processor']}; {env['date_utc']}.",
             "Versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()), "",
             "## Headline metric (%)", "", table(cells), ""]
    lengths = length_table(cells)
    if lengths:
        parts += ["## Synthetic tasks by document length (Acc@1 %)", "", lengths, ""]
    if plot_lengths(cells, out / "quality_vs_length.png"):
        parts += ["![quality vs length](quality_vs_length.png)", ""]
    if plot_cost(cells, out / "quality_vs_index_size.png", "index_bytes", "index size on disk (MB, summed)"):
        parts += ["![quality vs index size](quality_vs_index_size.png)", ""]
    if plot_cost(cells, out / "quality_vs_encode_time.png", "encode_seconds", "encode time (s, summed)"):
        parts += ["![quality vs encode time](quality_vs_encode_time.png)", ""]
    conditions = list(dict.fromkeys(c.condition for c in cells))
    baseline = "truncate" if "truncate" in conditions else (conditions[0] if conditions else None)
    rows = significance(cells, baseline) if baseline else []
    if rows:
        parts += [f"## Paired differences vs {baseline} (nDCG@10 / Acc@1 points, 95% bootstrap CI, t-test p)", "",
                  "| dataset | condition | Δ | 95% CI | p |", "|---|---|---|---|---|"]
        for r in rows:
            parts.append(f"| {r['dataset']} | {r['condition']} | {100 * r['mean_difference']:+.1f} | "
                         f"[{100 * r['ci_low']:+.1f}, {100 * r['ci_high']:+.1f}] | {r['p_value']:.3g} |")
    (out / "report.md").write_text("\n".join(parts) + "\n")
