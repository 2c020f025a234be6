"""The comparison report of evaluated arms: JSON, a Markdown table and PNG pass@k curves.

:func:`write_comparison` is called by the eval stage on its own ``results.json``, by the KFP
``report`` component and by ``polya run`` on the results of several runs. It accepts

- one results mapping (the eval stage's ``results.json``: ``{"ks", "sampling", "arms": {...}}``);
- a path or URI of such a file, or of the ``eval/`` folder holding it (local or ``s3://``);
- a mapping ``label -> results or path``, which merges several evaluations: an evaluation with a
  single arm is shown under ``label``, one with several arms as ``label/arm``.

and writes into ``output_dir`` (local or ``s3://``): ``results.json`` (the merged results),
``report.md`` and ``plots/pass_at_k.png`` (every benchmark side by side), one
``plots/pass_at_k_<benchmark>.png`` per benchmark and ``plots/pass_at_k_average.png``. Plots use
matplotlib's Agg canvas directly (no pyplot state, no display needed).

Numbers come with their uncertainty: every pass@k with its 95% bootstrap interval (a band in the
plots), and ``comparisons`` (:func:`polya.eval.statistics.compare_arms`, recomputed here so that
merged evaluations are compared too): every pair of arms, paired on the same questions, with an
interval, a p-value and a verdict. The report opens with those verdicts in words.
"""

from __future__ import annotations

import io
import json
import logging
import math
from typing import Any, Mapping

from polya.core.errors import DataError
from polya.core.layout import EvalLayout
from polya.core.outputs import read_eval_results
from polya.core.store import open_store
from polya.eval.statistics import compare_arms

logger = logging.getLogger(__name__)

RESULTS_FILE = EvalLayout.RESULTS


def load_results(source: str) -> dict[str, Any]:
    """Read an eval ``results.json`` given its path/URI or the folder that holds it."""
    text = source.rstrip("/")
    if text.endswith(".json"):
        parent, _, name = text.rpartition("/")
        store, path = open_store(parent or "."), name
    else:
        store, path = open_store(text), RESULTS_FILE
    results = read_eval_results(store, path)
    if results is None:
        raise DataError(f"no eval results at {store.uri(path)}; run `polya eval` first, or pass the path of its results.json")
    return results.dump()


def merge_results(results: Mapping[str, Any] | str) -> dict[str, Any]:
    """Normalize any accepted input (see the module doc) into one results mapping."""
    if isinstance(results, str):
        return load_results(results)
    if "arms" in results and isinstance(results["arms"], Mapping):
        return dict(results)
    if not results:
        raise DataError("no results to compare: pass an eval results mapping, a results.json path, or {label: results}")
    merged: dict[str, Any] = {"arms": {}, "sources": {}}
    ks: set[int] = set()
    benchmarks: list[str] = []
    for label, item in results.items():
        data = load_results(item) if isinstance(item, str) else item
        if not isinstance(data, Mapping) or "arms" not in data:
            raise DataError(f"results for '{label}' are not eval results (no 'arms' key)")
        arms = data["arms"]
        for arm, arm_data in arms.items():
            name = label if len(arms) == 1 else f"{label}/{arm}"
            if name in merged["arms"]:
                raise DataError(f"two evaluations give arm '{name}'; use distinct labels")
            merged["arms"][name] = arm_data
        ks.update(int(k) for k in data.get("ks", []))
        for b in data.get("benchmarks", []):
            if b not in benchmarks:
                benchmarks.append(b)
        merged["sources"][label] = item if isinstance(item, str) else "(in memory)"
        merged.setdefault("sampling", data.get("sampling"))
    merged["ks"] = sorted(ks)
    merged["benchmarks"] = benchmarks
    return merged


def _benchmarks(results: Mapping[str, Any]) -> list[str]:
    names: list[str] = list(results.get("benchmarks") or [])
    for arm in results["arms"].values():
        for b in arm.get("benchmarks", {}):
            if b not in names:
                names.append(b)
    return names


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}"


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _interval(data: Mapping[str, Any], k: int) -> str:
    bounds = (data.get("pass_at_k_interval") or {}).get(str(k))
    return f" [{100 * bounds[0]:.1f}, {100 * bounds[1]:.1f}]" if bounds else ""


def _pass_cell(bench: Mapping[str, Any] | None, k: int) -> str:
    """pass@k in percent with its 95% interval; "(q of N questions)" when undecided samples left questions out of it."""
    bench = bench or {}
    cell = _pct(bench.get("pass_at_k", {}).get(str(k)))
    if cell != "–":
        cell += _interval(bench, k)
    covered = (bench.get("pass_at_k_questions") or {}).get(str(k))
    if covered is not None and bench.get("questions") and covered < bench["questions"]:
        cell += f" ({covered} of {bench['questions']} questions)"
    return cell


def _comparison_summary(rows: list[Mapping[str, Any]]) -> list[str]:
    """The verdicts in words, before any table: what differs significantly, and what cannot be told."""
    if not rows:
        return []
    significant = [r for r in rows if r["significant"]]
    undecidable = sorted({r["benchmark"] for r in rows if not r["decidable"] and r["differing"]})
    lines = ["## Verdict", ""]
    if significant:
        lines += [f"- {len(significant)} of {len(rows)} paired comparisons are significant (Holm-adjusted p < 0.05):"]
        lines += [
            f"  - {r['benchmark']}, pass@{r['k']}: {r['verdict']} by {100 * abs(r['difference']):.2f} points "
            f"[{100 * r['interval'][0]:.1f}, {100 * r['interval'][1]:.1f}], p = {r['p_holm']:.4g}"
            for r in significant
        ]
    else:
        lines += [f"- None of the {len(rows)} paired comparisons is significant: the differences in the tables below may be noise."]
    if undecidable:
        lines += [
            f"- Too few questions to tell on {', '.join(undecidable)}: fewer than 6 questions where two arms differ, so no "
            "difference there could be significant whatever its size. Evaluate more questions (or more samples) to compare arms."
        ]
    return lines + [""]


def _comparison_tables(rows: list[Mapping[str, Any]]) -> list[str]:
    if not rows:
        return []
    lines = [
        "## Paired comparisons",
        "",
        "Arm A minus arm B on the questions both answered, in points: the 95% bootstrap interval over questions, a two-sided "
        "sign-flip permutation p-value, and Holm's adjustment over the pairs of one benchmark and k.",
        "",
    ]
    table = [
        [
            r["benchmark"], str(r["k"]), f"{r['a']} - {r['b']}", str(r["questions"]),
            f"{100 * r['difference']:+.2f} [{100 * r['interval'][0]:.1f}, {100 * r['interval'][1]:.1f}]",
            f"{r['p_value']:.4g}", f"{r['p_holm']:.4g}", ("**" + r["verdict"] + "**") if r["significant"] else r["verdict"],
        ]
        for r in rows
    ]
    return lines + _table(["benchmark", "k", "A - B", "questions", "difference (pts)", "p", "p (Holm)", "verdict"], table) + [""]


def _kmax(results: Mapping[str, Any]) -> int:
    ks = [int(k) for arm in results["arms"].values() for b in arm.get("benchmarks", {}).values() for k in b.get("pass_at_k", {})]
    return max(ks) if ks else 1


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def markdown_report(results: Mapping[str, Any]) -> str:
    """The comparison as Markdown: pass@k tables (percent), diversity, composition and run details."""
    benches = _benchmarks(results)
    arms = results["arms"]
    kmax = _kmax(results)
    lines = ["# Evaluation report", ""]
    s = results.get("sampling") or {}
    if s:
        lines += [
            f"Sampling: n={s.get('n')} samples per question, temperature {s.get('temperature')}, top_p {s.get('top_p')}, "
            f"max_tokens {s.get('max_tokens')} (preset {s.get('preset')}). pass@k is the unbiased estimator, in percent, "
            "averaged over questions; [low, high] is its 95% bootstrap interval over questions.",
            "",
        ]
    lines += _comparison_summary(results.get("comparisons") or [])
    for k in sorted({1, kmax}, reverse=True):
        lines += [f"## pass@{k}", ""]
        header = ["arm"] + benches + ["average"]
        rows = []
        for arm, data in arms.items():
            row = [arm]
            for b in benches:
                row.append(_pass_cell(data["benchmarks"].get(b), k))
            average = data.get("average") or {}
            value = _pct(average.get("pass_at_k", {}).get(str(k)))
            row.append(value + (_interval(average, k) if value != "–" else ""))
            rows.append(row)
        lines += _table(header, rows) + [""]
    lines += _comparison_tables(results.get("comparisons") or [])
    lines += ["## pass@k by benchmark", ""]
    for b in benches:
        ks = sorted({int(k) for data in arms.values() for k in (data["benchmarks"].get(b) or {}).get("pass_at_k", {})})
        if not ks:
            continue
        title = next((d["benchmarks"][b].get("title") for d in arms.values() if b in d["benchmarks"]), b)
        lines += [f"### {title} (`{b}`)", ""]
        rows = [[arm] + [_pass_cell(data["benchmarks"].get(b), k) for k in ks] for arm, data in arms.items()]
        lines += _table(["arm"] + [f"pass@{k}" for k in ks], rows) + [""]
    lines += [
        "## Diversity (Vendi score per question, mean)",
        "",
        "Effective number of distinct solutions among a question's samples (TF-IDF n-gram cosine similarity); "
        "all samples / correct samples only.",
        "",
    ]
    rows = []
    for arm, data in arms.items():
        row = [arm]
        for b in benches:
            d = data["benchmarks"].get(b) or {}
            row.append(f"{_num(d.get('vendi_per_question'))} / {_num(d.get('vendi_per_question_correct'))}")
        rows.append(row)
    lines += _table(["arm"] + benches, rows) + [""]
    comp_rows = []
    for arm, data in arms.items():
        for b in benches:
            c = (data["benchmarks"].get(b) or {}).get("composition")
            if c:
                comp_rows.append([arm, b, str(c["solutions"]), str(c["labelled"]), _pct(c.get("share_multiple")), _num(c.get("mean_heuristics")),
                                  ", ".join(f"{h} {n}" for h, n in list(c.get("per_heuristic", {}).items())[:4]) or "–"])
    if comp_rows:
        lines += [
            "## Composition (LLM judge)",
            "",
            "Share of solutions that combine more than one Pólya heuristic, as labelled by the judge.",
            "",
        ]
        lines += _table(["arm", "benchmark", "solutions", "labelled", "% > 1 heuristic", "heuristics / solution", "most used"], comp_rows) + [""]
    lines += ["## Details", ""]
    rows = []
    for arm, data in arms.items():
        for b in benches:
            d = data["benchmarks"].get(b)
            if not d:
                continue
            rows.append([
                arm, b, str(d.get("questions")), str(d.get("samples_per_question")), _pct(d.get("accuracy")),
                str(d.get("questions_solved")), str(d.get("undecided", 0)), str(d.get("completion_tokens_mean")),
                ", ".join(f"{k} {v}" for k, v in (d.get("finish_reasons") or {}).items()),
            ])
    lines += _table(
        ["arm", "benchmark", "questions", "samples / question", "accuracy %", "solved", "undecided", "tokens / sample", "finish reasons"], rows
    )
    undecided = sum(int((d or {}).get("undecided") or 0) for data in arms.values() for d in data["benchmarks"].values())
    if undecided:
        lines += [
            "",
            f"**{undecided} sample(s) stayed undecided**: the judge timed out or failed on them twice. They are neither right nor "
            "wrong: accuracy and pass@k count decided samples only, and a question with fewer than k decided samples is left "
            "out of pass@k for that k.",
        ]
    lines += _cost_table(arms)
    lines += ["", "Models: " + "; ".join(f"{arm} = `{data.get('model')}`" for arm, data in arms.items()), ""]
    return "\n".join(lines)


def _count(value: Any) -> str:
    return "–" if value is None else f"{int(value):,}"


def _duration(seconds: Any) -> str:
    if seconds is None:
        return "–"
    seconds = float(seconds)
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _cost_table(arms: Mapping[str, Any]) -> list[str]:
    """What making each arm's model cost, read next to its gains (polya.eval.accounting)."""
    rows = []
    for arm, data in arms.items():
        c = data.get("compute") or {}
        if not c:
            continue
        gpu = c.get("gpu_hours")
        rows.append([
            arm, _count(c.get("generation_tokens")), _count(c.get("sft_tokens")), _count(c.get("rl_tokens")),
            _duration(c.get("wall_s")), "–" if gpu is None else f"{gpu:.2f}",
        ])
    if not rows:
        return []
    return [
        "",
        "## What each arm cost",
        "",
        "Tokens generated for its SFT data (shared by the arms trained on one generation run), tokens it was trained on (SFT, "
        "padding excluded), tokens its GRPO learners processed, wall time of the stages that made it (generate, select, sft, rl; "
        "every attempt of a resumed stage), and GPU-hours of its training (0 on CPU; – unknown). Evaluation is not counted.",
        "",
        *_table(["arm", "generated tokens", "SFT tokens", "RL tokens", "wall time", "GPU-hours"], rows),
    ]


Curve = tuple[str, list[int], list[float], list[tuple[float, float]] | None]
"""Label, ks, pass@k in percent, and the 95% interval per k (None when the results have none)."""


def _curve(label: str, data: Mapping[str, Any]) -> Curve:
    points = sorted((int(k), float(v)) for k, v in (data.get("pass_at_k") or {}).items())
    intervals = data.get("pass_at_k_interval") or {}
    bands = [tuple(100 * x for x in intervals[str(k)]) for k, _v in points if str(k) in intervals]
    return label, [p[0] for p in points], [100 * p[1] for p in points], bands if len(bands) == len(points) and bands else None  # type: ignore[return-value]


def _draw(ax: Any, title: str, curves: list[Curve]) -> None:
    for label, ks, values, bands in curves:
        if ks:
            line = ax.plot(ks, values, marker="o", label=label)[0]
            if bands:
                ax.fill_between(ks, [b[0] for b in bands], [b[1] for b in bands], color=line.get_color(), alpha=0.15, linewidth=0)
    all_ks = sorted({k for _l, ks, _v, _b in curves for k in ks})
    if all_ks and max(all_ks) > 1:
        ax.set_xscale("log", base=2)
    ax.set_xticks(all_ks or [1])
    ax.set_xticklabels([str(k) for k in all_ks] or ["1"])
    ax.set_ylim(-2, 102)
    ax.set_title(title)
    ax.set_xlabel("k")
    ax.set_ylabel("pass@k (%)")
    ax.grid(True, alpha=0.3)


def _png(fig: Any) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def plot_pass_at_k(results: Mapping[str, Any]) -> dict[str, bytes]:
    """PNG images by file name: one per benchmark, the average, and all benchmarks side by side."""
    from matplotlib.figure import Figure

    benches = _benchmarks(results)
    arms = results["arms"]
    panels: list[tuple[str, str, list[Curve]]] = []
    for b in benches:
        curves = [_curve(arm, data["benchmarks"][b]) for arm, data in arms.items() if b in data["benchmarks"]]
        title = next((d["benchmarks"][b].get("title") for d in arms.values() if b in d["benchmarks"]), b)
        panels.append((f"pass_at_k_{b}.png", f"{title} (95% intervals)", curves))
    panels.append(("pass_at_k_average.png", "Average over benchmarks", [_curve(arm, data.get("average") or {}) for arm, data in arms.items()]))
    images: dict[str, bytes] = {}
    for name, title, curves in panels:
        fig = Figure(figsize=(5, 3.6))
        ax = fig.add_subplot(1, 1, 1)
        _draw(ax, title, curves)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        images[name] = _png(fig)
    cols = min(4, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig = Figure(figsize=(4.2 * cols, 3.4 * rows))
    for i, (_name, title, curves) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1)
        _draw(ax, title, curves)
        if i == 0 and ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    images["pass_at_k.png"] = _png(fig)
    return images


def write_comparison(results: Mapping[str, Any] | str, output_dir: str) -> dict[str, Any]:
    """Write ``results.json``, ``report.md`` and ``plots/*.png`` comparing the arms into ``output_dir``.

    Returns ``{"results": uri, "report": uri, "plots": [uri, ...]}``.
    """
    merged = merge_results(results)
    if not merged.get("arms"):
        raise DataError("no arms to compare in the results")
    merged["comparisons"] = compare_arms(merged)
    store = open_store(output_dir)
    store.write_text(RESULTS_FILE, json.dumps(merged, indent=2, sort_keys=False, default=str) + "\n")
    store.write_text(EvalLayout.REPORT, markdown_report(merged))
    plots = []
    for name, data in plot_pass_at_k(merged).items():
        store.write_bytes(f"{EvalLayout.PLOTS}/{name}", data)
        plots.append(store.uri(f"{EvalLayout.PLOTS}/{name}"))
    logger.info("comparison of %s arms written to %s", len(merged["arms"]), store.uri())
    return {"results": store.uri(RESULTS_FILE), "report": store.uri(EvalLayout.REPORT), "plots": plots}
