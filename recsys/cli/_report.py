"""Benchmark outputs: the leaderboard (terminal table and results.md) and the PNG plots."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from numpy.typing import NDArray

# Columns of the leaderboard: (metric, header)
ACCURACY = (("precision", "P"), ("recall", "R"), ("f1", "F1"), ("map", "MAP"), ("mrr", "MRR"), ("hit_rate", "HR"))
BEYOND = (("coverage", "coverage"), ("novelty", "novelty"), ("diversity", "diversity"), ("gini", "gini"), ("serendipity", "serendipity"))


def _tuning_line(config: dict[str, Any]) -> str:
    if not config.get("tune"):
        return "library defaults (no tuning)"
    sample = config.get("tune_sample")
    where = "a validation split carved out of train (never test)"
    if sample is not None:
        share = f"{sample:.0%} of the train users" if isinstance(sample, float) else f"{sample:,} random train users"
        where = f"a validation split carved out of the train interactions of {share} (never test)"
    return f"tuned per model on {where}, then refit on all of train; test evaluated once per model"


def _f(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "–"
    return f"{v:.{digits}f}"


def _secs(v: Any) -> str:
    if v is None:
        return "–"
    return f"{v:.2f}" if v < 100 else f"{v:.0f}"


def _mb(v: Any) -> str:
    return "–" if v is None else f"{v:.0f}"


def ok_records(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Models and peers that ran, best first by the main metric."""
    key = payload["main_metric"]
    rows = [r for r in payload["models"] + payload.get("peers", []) if r["status"] == "ok"]
    return sorted(rows, key=lambda r: -(r["metrics"].get(key) if r["metrics"].get(key) is not None else -np.inf))


def chosen(r: dict[str, Any]) -> str:
    if r["kind"] == "peer":
        return f"peer ({r['library']})"
    how = r.get("params_source", "defaults")
    if how == "tuned":
        t = r.get("tuning") or {}
        return f"tuned ({t.get('n_trials', '?')} trials)"
    return how


def _ci(r: dict[str, Any], key: str) -> str:
    ci = r.get("confidence_intervals", {}).get(key)
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""


def leaderboard(payload: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    k = payload["protocol"]["k"][0]
    key = payload["main_metric"]
    header = ["#", "model", "hyper-parameters", f"NDCG@{k}", "95% CI"]
    header += [f"{h}@{k}" for _, h in ACCURACY] + [f"{h}@{k}" for _, h in BEYOND[:3]]
    header += ["fit s", "recommend s", "peak +MB"]
    rows = []
    for i, r in enumerate(ok_records(payload), 1):
        m = r["metrics"]
        row = [str(i), r["name"], chosen(r), _f(m.get(key)), _ci(r, key)]
        row += [_f(m.get(f"{name}@{k}")) for name, _ in ACCURACY]
        row += [_f(m.get(f"{name}@{k}"), 3) for name, _ in BEYOND[:3]]
        row += [_secs(r.get("fit_seconds")), _secs(r.get("recommend_seconds")), _mb(r.get("peak_memory_above_start_mb"))]
        rows.append(row)
    return header, rows


def print_table(payload: dict[str, Any], con: Any) -> None:
    """The leaderboard in the terminal: the main columns (results.md has them all)."""
    from rich.table import Table

    k = payload["protocol"]["k"][0]
    key = payload["main_metric"]
    d = payload["dataset"]
    table = Table(title=f"{d['name']}: {d['n_users']:,} users x {d['n_items']:,} items; {payload['protocol']['description']}")
    cols = ["#", "model", "chosen", f"NDCG@{k} (95% CI)", f"P@{k}", f"R@{k}", f"F1@{k}", f"MAP@{k}", f"cov@{k}", f"nov@{k}", "fit s", "rec s", "+MB"]
    for h in cols:
        table.add_column(h, justify="left" if h in ("model", "chosen") else "right", no_wrap=True)
    for i, r in enumerate(ok_records(payload), 1):
        m = r["metrics"]
        ci = r.get("confidence_intervals", {}).get(key)
        table.add_row(
            str(i), r["name"], chosen(r),
            _f(m.get(key)) + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""),
            _f(m.get(f"precision@{k}")), _f(m.get(f"recall@{k}")), _f(m.get(f"f1@{k}")), _f(m.get(f"map@{k}")),
            _f(m.get(f"coverage@{k}"), 3), _f(m.get(f"novelty@{k}"), 2),
            _secs(r.get("fit_seconds")), _secs(r.get("recommend_seconds")), _mb(r.get("peak_memory_above_start_mb")),
        )  # fmt: skip
    con.print(table)
    for r in payload["models"] + payload.get("peers", []):
        if r["status"] != "ok":
            con.print(f"{r['status']} {r['name']}: {r.get('note') or r.get('error')}", markup=False)
    for c in payload.get("comparisons", []):
        con.print(_comparison_line(c), markup=False)
    con.print(f"total {payload['total_seconds']:.0f} s on {payload['machine_line']}", markup=False)


def _comparison_line(c: dict[str, Any]) -> str:
    return (
        f"paired {c['metric']}: {c['a']} - {c['b']} = {c['diff']:+.4f} "
        f"(95% CI [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}], paired t-test p={c['p_ttest']:.2g}, "
        f"Wilcoxon p={c['p_wilcoxon']:.2g}, {c['n_users']} users)"
    )


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    esc = [[c.replace("|", "\\|") for c in row] for row in rows]
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in esc]


def write_markdown(path: str, payload: dict[str, Any], plots: list[str]) -> None:
    d, p, k = payload["dataset"], payload["protocol"], payload["protocol"]["k"][0]
    lines = [
        f"# Benchmark leaderboard: {d['name']}",
        "",
        f"Command: `{payload['command']}`",
        "",
        f"recsys {payload['versions'].get('recsys', '?')}, run {payload['created']}, total {payload['total_seconds']:.0f} s "
        f"(data loading, every fit, recommendation, evaluation{', search' if payload['config'].get('tune') else ''}).",
        "",
        f"- **Data**: {d['source']}: {d['n_users']:,} users x {d['n_items']:,} items, {d['n_interactions']:,} interactions"
        + (f" ({d['weights']})" if d.get("weights") else "")
        + f"; SHA-256 of the parsed ratings (`{', '.join(d['hashed_columns'])}`): `{d['ratings_sha256']}`.",
        f"- **Protocol**: {p['description']}; {p['n_train']:,} train / {p['n_test']:,} test rows, "
        f"{p['n_users_evaluated']:,} users evaluated; each user's train items excluded; every test interaction "
        f"relevant (also items absent from train); metrics from `recsys.evaluation.Evaluator` (definitions "
        f"v{p['definitions_version']}), 95% bootstrap CIs over users ({p['n_bootstrap']} resamples).",
        f"- **Machine**: {payload['machine_line']}.",
        f"- **Hyper-parameters**: {_tuning_line(payload['config'])}.",
        "",
        f"## Leaderboard (sorted by NDCG@{k})",
        "",
    ]
    header, rows = leaderboard(payload)
    lines += _md_table(header, rows)
    lines += ["", "Times in seconds: fit on train; recommend = top-k lists for every test user. Peak +MB: peak resident memory while the model ran (search, fit, recommend, evaluate) above the process's memory when it started (results.json also has the absolute peak). With a search, every trial's fit time is in the search JSON; models with an on-disk embedding cache (bert, hybrid) fit from that cache after their search."]
    ok = ok_records(payload)
    # every metric at every k
    keys = [key for key in ok[0]["metrics"]] if ok else []
    if keys:
        lines += ["", "## Every metric", ""]
        lines += _md_table(["model"] + keys, [[r["name"]] + [_f(r["metrics"].get(key)) for key in keys] for r in ok])
    lines += ["", "## Hyper-parameters", ""]
    hp_rows = []
    for r in payload["models"] + payload.get("peers", []):
        if r["status"] != "ok":
            continue
        params = _fmt_params(r.get("params") or {})
        t = r.get("tuning")
        search = ""
        if t:
            search = f"`{t['file']}`: {t['n_trials']} trials ({t['method']}), best validation {t['metric']} {t['best_score']:.4f}"
        hp_rows.append([r["name"], r.get("class", ""), chosen(r), params or "–", search or r.get("source", "") or "–"])
    lines += _md_table(["model", "class", "chosen by", "parameters", "search / source"], hp_rows)
    notes = [r for r in payload["models"] + payload.get("peers", []) if r["status"] != "ok"]
    if notes:
        lines += ["", "## Not run", ""]
        lines += [f"- **{r['name']}** ({r['status']}): {r.get('note') or r.get('error')}" for r in notes]
    peer_notes = sorted({r["note"] for r in payload.get("peers", []) if r["status"] == "ok" and r.get("note")})
    if peer_notes:
        lines += ["", "Peers: " + "; ".join(peer_notes) + "."]
    if payload.get("comparisons"):
        lines += ["", "## Paired comparisons (same users, bootstrap CI of the difference)", ""]
        lines += ["- " + _comparison_line(c) for c in payload["comparisons"]]
    if plots:
        lines += ["", "## Plots", ""]
        lines += [f"![{os.path.splitext(pl)[0]}]({pl})" for pl in plots]
    lines += ["", "## Versions", "", ", ".join(f"{n} {v}" for n, v in payload["versions"].items()), ""]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


def _fmt_params(params: dict[str, Any]) -> str:
    """``k=200, encoder=Doc2VecEncoder(vector_size=32, ...)``: nested components shown by class and parameters."""

    def fmt(v: Any) -> str:
        if isinstance(v, dict) and "__config__" in v:
            cfg = v["__config__"]
            name = str(cfg.get("class", "?")).rsplit(".", 1)[-1]
            return f"{name}({_fmt_params(cfg.get('params') or {})})"
        return repr(v)

    return ", ".join(f"{k}={fmt(v)}" for k, v in params.items())


def write_plots(out: str, payload: dict[str, Any], per_user: dict[str, NDArray[np.float64]]) -> tuple[list[str], str | None]:
    """PNG plots (matplotlib, extra ``plot``); returns the file names and a note when skipped."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return [], "plots skipped: matplotlib is not installed (pip install 'recsys[plot]')"
    ok = ok_records(payload)
    if not ok:
        return [], "plots skipped: no model ran"
    k = payload["protocol"]["k"][0]
    key = payload["main_metric"]
    files: list[str] = []

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        fig.savefig(os.path.join(out, name), dpi=110)
        plt.close(fig)
        files.append(name)
    names = [r["name"] for r in ok]
    colors = ["tab:orange" if r["kind"] == "peer" else "tab:blue" for r in ok]

    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    for ax, other, label in ((axes[0], f"coverage@{k}", "catalogue coverage"), (axes[1], f"novelty@{k}", "novelty (bits)")):
        for r, c in zip(ok, colors):
            x, y = r["metrics"].get(other), r["metrics"].get(key)
            if x is None or y is None:
                continue
            ax.scatter(x, y, color=c, s=40)
            ax.annotate(r["name"], (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set_xlabel(f"{label} @{k}")
        ax.set_ylabel(f"NDCG@{k}")
        ax.grid(alpha=0.3)
    fig.suptitle(f"{payload['dataset']['name']}: accuracy vs beyond-accuracy (blue: recsys, orange: peers)")
    save(fig, "accuracy_vs_coverage_novelty.png")

    fig, ax = plt.subplots(figsize=(8, 0.4 * len(ok) + 1.5))
    y = np.arange(len(ok))
    fit = [max(r.get("fit_seconds") or 0.0, 1e-3) for r in ok]
    rec = [max(r.get("recommend_seconds") or 0.0, 1e-3) for r in ok]
    ax.barh(y - 0.2, fit, height=0.4, label="fit", color="tab:blue")
    ax.barh(y + 0.2, rec, height=0.4, label="recommend (all test users)", color="tab:green")
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("seconds (log scale)")
    ax.legend(loc="lower right")
    ax.set_title(f"{payload['dataset']['name']}: time per model ({payload['machine']['usable_cores']} cores)")
    ax.grid(axis="x", alpha=0.3)
    save(fig, "fit_time.png")

    have = [r for r in ok if r["name"] in per_user]
    if have:
        fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(have) + 2), 5))
        data = [per_user[r["name"]] for r in have]
        ax.boxplot(data, showmeans=True, showfliers=False)
        ax.set_xticks(np.arange(1, len(have) + 1), [r["name"] for r in have], rotation=45, ha="right")
        ax.set_ylabel(f"per-user NDCG@{k}")
        ax.set_title(f"{payload['dataset']['name']}: per-user NDCG@{k} (box: quartiles, triangle: mean)")
        ax.grid(axis="y", alpha=0.3)
        save(fig, "ndcg_per_user.png")
    return files, None
