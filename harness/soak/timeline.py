"""timeline.png: one lane per component (faults, alerts, actions, pages), the sentinel run above the baseline."""

from __future__ import annotations

from pathlib import Path

from tts_sentinel.harness.incidents import components_acted_on, window_of
from tts_sentinel.harness.soak.observe import COMPONENTS
from tts_sentinel.harness.soak.run import RunRecord

KINDS = ("faults", "alerts", "actions", "pages")
TIER_COLOURS = {"light": "#4c9be8", "medium": "#f0a030", "heavy": "#d04040", "watchdog": "#888888"}


class TimelineUnavailable(RuntimeError):
    """matplotlib is missing; the message says how to install it."""



def _lanes(ax: object, run: RunRecord, title: str) -> None:
    """Draw one run on one axis: y rows are (component, kind)."""
    t0 = run.started_at
    rows = {(c, k): n for n, (c, k) in enumerate((c, k) for c in reversed(COMPONENTS) for k in reversed(KINDS))}
    starts = [r.injected_at for r in run.records]

    def component_of(t: float) -> str:
        i = window_of(t, starts)
        return run.records[i].injection.component if i is not None else "web"

    for r in run.records:  # fault: injected until green (or until the soak cleared it)
        y = rows[(r.injection.component, "faults")]
        end = (r.green_at if r.green_at and not r.cleared_by_soak else r.ended_at) or run.finished_at
        ax.broken_barh([(r.injected_at - t0, max(end - r.injected_at, 0.5))], (y - 0.4, 0.8),
                       facecolors="#f4a0a0", edgecolors="#a02020" if r.cleared_by_soak else "none",
                       hatch="xx" if r.cleared_by_soak else None)
        ax.text(r.injected_at - t0, y + 0.45, f"{r.index + 1} {r.injection.fault}", fontsize=6, va="bottom")
    if run.observer:
        names = sorted({a.name for a in run.observer.alerts.values()})
        for a in run.observer.alerts.values():
            # alerts that overlap are common (an OOM and the silence it causes): one thin sub-row per name
            y = rows[(component_of(a.active_at), "alerts")] - 0.4 + (names.index(a.name) % 4) * 0.2
            ax.broken_barh([(a.firing_at - t0, max(a.last_seen - a.firing_at, 0.5))], (y, 0.18),
                           facecolors="#f0c040" if a.labels.get("severity") == "critical" else "#f8e08a",
                           edgecolors="#806010", linewidth=0.4)
        for p in run.observer.pages:
            y = rows[(component_of(p.starts_at), "pages")]
            ax.plot([p.arrived - t0], [y], marker="v", color="#7030a0", markersize=7)
    for row in run.journal:
        if row.get("tier") not in ("light", "medium", "heavy") or not row.get("created_at"):
            continue
        begin = row.get("started_at") or row["created_at"]
        finish = row.get("finished_at") or run.finished_at
        for component in components_acted_on(row) or [component_of(row["created_at"])]:
            y = rows[(component, "actions")]
            if row.get("status") == "refused":
                ax.plot([begin - t0], [y], marker="X", markersize=8, color=TIER_COLOURS[row["tier"]])
                continue
            ax.broken_barh([(begin - t0, max(finish - begin, 0.8))], (y - 0.35, 0.7),
                           facecolors=TIER_COLOURS[row["tier"]])
    for t, program in run.watchdog_restarts:
        component = "web" if "web" in program else "inference"
        ax.broken_barh([(t - t0, 1.0)], (rows[(component, "actions")] - 0.35, 0.7), facecolors=TIER_COLOURS["watchdog"])
    ax.set_yticks(list(rows.values()), [f"{c} · {k}" for c, k in rows])
    ax.set_ylim(-0.8, len(rows) - 0.2)
    ax.set_xlim(0, max(run.finished_at - t0, 1.0))
    ax.set_title(title, fontsize=9, loc="left")
    ax.grid(axis="x", alpha=0.3)
    ax.tick_params(labelsize=7)


def render(path: Path, run: RunRecord, baseline: RunRecord | None = None) -> None:
    """Write the PNG; raises TimelineUnavailable without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        raise TimelineUnavailable("matplotlib is not installed: pip install 'tts-sentinel[demo]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    runs = [(run, "TTS Sentinel: faults until green (crossed: never healed, the soak cleared it), alerts, "
                  "receiver actions, pages (▼)")]
    if baseline is not None:
        runs.append((baseline, "Baseline: supervisord autorestart + liveness check (grey: watchdog restarts)"))
    fig, axes = plt.subplots(len(runs), 1, figsize=(14, 3.2 * len(runs)), squeeze=False)
    for ax, (one, title) in zip(axes[:, 0], runs, strict=True):
        _lanes(ax, one, title)
    axes[-1, 0].set_xlabel("seconds since the run started")
    legend = [Patch(color=c, label=t) for t, c in TIER_COLOURS.items()]
    legend += [Line2D([], [], marker="X", color="#d04040", linestyle="none", label="refused"),
               Line2D([], [], marker="v", color="#7030a0", linestyle="none", label="page"),
               Patch(color="#f0c040", label="alert (critical)"), Patch(color="#f8e08a", label="alert (warning)"),
               Patch(color="#f4a0a0", label="fault until green"),
               Patch(facecolor="#f4a0a0", edgecolor="#a02020", hatch="xx", label="fault cleared by the soak")]
    fig.legend(handles=legend, loc="lower center", ncol=len(legend), fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
