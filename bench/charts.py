"""The charts in bench/RESULTS.md, drawn from bench/results.json as SVG files in bench/charts/.

`make bench` runs this at its end (run.py calls `draw`); to redraw from an existing run:

    bench/.venv/bin/python bench/charts.py [results.json] [out-dir] [--png]

Each chart draws what the results hold and leaves out (with a note) what a partial run lacks.
"""
import json
import sys
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pricing import lambda_cost  # noqa: E402  (one pricing model for the table and the chart)

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "charts"
PNG = "--png" in sys.argv
RUST, FLASK, FLOOR, OTHER = "#c2410c", "#2563eb", "#4b5563", "#9ca3af"
NODE = "#7c3aed"
TARGET = "#15803d"

plt.rcParams.update({
    "svg.fonttype": "none",  # text stays text: small files that diff
    "svg.hashsalt": "auth-bench",  # stable ids, so an unchanged chart is an unchanged file
    "font.family": "sans-serif",
    "font.size": 10,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e5e7eb",
    "axes.axisbelow": True,
    "legend.frameon": False,
})


def number(v):
    """12,646 / 42.2 / 1.22 / 0.004: as many digits as a reader needs."""
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    if v >= 1:
        return f"{v:.2f}"
    return f"{v:.2g}"


def log_axis(axis, subs=(1.0,)):
    """Decades (and `subs` within them: 1, 2, 5) labelled in plain numbers, not 10^n."""
    axis.set_major_locator(LogLocator(base=10, subs=subs))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def save(fig, name, out, note, r):
    m = r.get("machine", {})
    note += f". Run of commit {m.get('commit', '?')} on {m.get('cpu', '?')}, {m.get('cores', '?')} cores (bench/RESULTS.md)."
    if note:  # a figure-level x label, so the layout leaves room for it
        wrapped = textwrap.fill(note, width=int(fig.get_figwidth() * 16))
        fig.supxlabel(wrapped.replace("$", r"\$"), fontsize=8, color="#6b7280", ha="center")
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.svg"
    fig.savefig(path, format="svg", metadata={"Date": None})
    if PNG:  # --png: a raster copy to look at
        fig.savefig(path.with_suffix(".png"), format="png", dpi=110)
    plt.close(fig)
    return path


# ------------------------------------------------------------------------------------- HTTP
def http_chart(r, out):
    hp = r.get("http")
    if not hp:
        return None
    services = [(n, c, label) for n, c, label in (
        ("rust", RUST, "Rust (auth-local)"),
        ("flask", FLASK, f"Flask peer (gunicorn, {hp.get('peer_workers', '?')} workers)"),
        ("node", NODE, f"Node.js peer (express, cluster of {hp.get('node_workers', '?')})")) if n in hp]
    rust = hp.get("rust", {})
    endpoints = [ep for ep in ("/health", "/profile", "/refresh", "/logout", "/login") if ep in rust]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), layout="constrained")
    for ax, key, title, unit in ((axes[0], "rps", "Successful requests per second (higher is better)", "requests per second"),
                                 (axes[1], "p99_ms", "p99 latency (lower is better)", "milliseconds")):
        for i, ep in enumerate(endpoints):
            here = [(hp[n][ep], c) for n, c, _ in services if ep in hp[n]]
            width = 0.8 / len(here)
            for j, (row, color) in enumerate(here):
                dx = (j - (len(here) - 1) / 2) * width
                v = row["rps"] * (1 - row["non_2xx"] / max(1, row["requests"])) if key == "rps" else row[key]
                ax.bar(i + dx, v, width, color=color)
                ax.annotate(number(v), (i + dx, v), xytext=(0, 2), textcoords="offset points", ha="center",
                            va="bottom", fontsize=7)
        ax.set_yscale("log")
        log_axis(ax.yaxis)
        only = {ep for ep in endpoints if all(ep not in hp[n] for n, _, _ in services if n != "rust")}
        ax.set_xticks(range(len(endpoints)), [f"{ep}\n(Rust only)" if ep in only else ep for ep in endpoints])
        ax.set_ylabel(f"{unit} (log scale)")
        ax.set_title(title)
        ax.margins(y=0.15)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for _, c, _ in services]
    axes[0].legend(handles, [label for _, _, label in services], loc="upper right", fontsize=8)
    fig.suptitle("HTTP on one machine: same PostgreSQL, same wrk load", fontweight="bold")
    note = "wrk, 2 threads, 16 connections, on the machine of the run; the peers have no /refresh or /logout"
    return save(fig, "http", out, note, r)


def durable_chart(r, out):
    wp = r.get("write_paths")
    if not wp:
        return None
    paths = ("/login", "/refresh", "/logout", "/password")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), layout="constrained")
    width = 0.38
    for ax, title, value, unit in (
            (axes[0], "Latency, p50 (lower is better)", lambda x: x.get("p50_ms", x.get("median")), "milliseconds"),
            (axes[1], "PostgreSQL CPU per request", lambda x: x["pg_cpu_ms_per_request"], "milliseconds")):
        for i, ep in enumerate(paths):
            for dx, mode, color in ((-width / 2, "fast", OTHER), (width / 2, "durable", RUST)):
                v = value(wp[mode][ep])
                ax.bar(i + dx, v, width, color=color)
                ax.annotate(number(v), (i + dx, v), xytext=(0, 2), textcoords="offset points", ha="center",
                            va="bottom", fontsize=8)
        ax.set_yscale("log")
        log_axis(ax.yaxis, subs=(1.0, 2.0, 5.0))
        ax.set_xticks(range(len(paths)), paths)
        ax.set_ylabel(f"{unit} (log scale)")
        ax.set_title(title)
        ax.margins(y=0.15)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in (OTHER, RUST)]
    axes[0].legend(handles, ["fsync, synchronous_commit, full_page_writes off", "all three on (WAL on disk)"],
                   loc="upper left", fontsize=8)
    fig.suptitle("The write paths with and without durable commits", fontweight="bold")
    return save(fig, "durable", out, "auth-local and PostgreSQL on the machine of the run; /password is one change "
                                     "at a time, the others wrk with 16 connections", r)


def scale_chart(r, out):
    import scale

    _, rows, _ = scale.table(r)
    parts = ("lambda", "connections", "database", "wal")
    labels = {"lambda": "Lambda concurrency\n÷ Region quota", "connections": "direct connections\n÷ max_connections",
              "database": "PostgreSQL vCPUs\n÷ largest instance", "wal": "WAL flushes\n÷ half of gp3 IOPS"}
    fig, ax = plt.subplots(figsize=(10, 4.4), layout="constrained")
    width = 0.8 / len(rows)
    colors = (OTHER, FLASK, RUST)
    for j, (label, s) in enumerate(rows):
        lim = scale.limits(s)
        for i, k in enumerate(parts):
            dx = (j - (len(rows) - 1) / 2) * width
            ax.bar(i + dx, lim[k] * 100, width, color=colors[j % 3], label=label if i == 0 else None)
            ax.annotate(f"{lim[k]:.0%}", (i + dx, lim[k] * 100), xytext=(0, 2), textcoords="offset points",
                        ha="center", va="bottom", fontsize=7)
    ax.axhline(100, color=TARGET, ls="--", lw=1)
    ax.set_yscale("log")
    log_axis(ax.yaxis)
    ax.set_xticks(range(len(parts)), [labels[k] for k in parts])
    ax.set_ylabel("share of the limit, % (log scale)")
    ax.set_title("Which part gives out first (100 % is the limit)")
    ax.legend(loc="upper left", fontsize=8)
    return save(fig, "scale", out, "bench/scale.py from the run's durable figures; limits as published by AWS (named in "
                                   "the script)", r)


# ------------------------------------------------------------------------------- cold starts
def cold_start_chart(r, out):
    lam = r.get("lambda")
    if not lam:
        return None
    rows = []
    for f in lam["functions"]:
        fr = f["first_response_ms"]
        rows.append((f"{f['function']} → {f['status']}", fr, RUST))
    pc = r.get("peer_cold_start_ms")
    if pc:
        rows.append(("Flask peer: gunicorn start to first /health", pc, FLASK))
    rows.reverse()  # first function at the top
    fig, ax = plt.subplots(figsize=(10, 0.42 * len(rows) + 1.6), layout="constrained")
    summarised = False
    for y, (_label, s, color) in enumerate(rows):
        samples = s.get("samples")
        if samples:
            jitter = [((k * 0.618034) % 1 - 0.5) * 0.36 for k in range(len(samples))]
            ax.scatter(samples, [y + j for j in jitter], s=9, color=color, alpha=0.45, linewidths=0)
        else:
            summarised = True
            ax.plot([s["p10"], s["p90"]], [y, y], color=color, lw=2.5, alpha=0.5, solid_capstyle="butt")
        ax.plot([s["median"]] * 2, [y - 0.3, y + 0.3], color="black", lw=2)
        # The medians in a column of their own at the right, clear of the dots and the target.
        ax.text(1.01, y, f"{number(s['median'])} ms", transform=ax.get_yaxis_transform(), va="center", fontsize=9)
    ax.text(1.01, len(rows) - 0.45, "median", transform=ax.get_yaxis_transform(), fontsize=8, color="#6b7280",
            va="bottom")
    ax.axvline(25, color=TARGET, ls="--", lw=1.2, zorder=0.5)
    ax.text(25, len(rows) - 0.45, " 25 ms target", color=TARGET, fontsize=8, va="bottom")
    ax.set_yticks(range(len(rows)), [label for label, _, _ in rows])
    ax.set_ylim(-0.7, len(rows) - 0.1)
    ax.set_xscale("log")
    log_axis(ax.xaxis, subs=(1.0, 2.0, 5.0))  # 5, 10, 20, 50 ms: the 25 ms target reads against them
    ax.set_xlabel("exec to first response, milliseconds (log scale)")
    ax.grid(axis="y", visible=False)
    fig.suptitle(f"Cold starts: {lam.get('starts', '?')} starts per function behind the Runtime API emulator",
                 fontweight="bold")
    note = ("Dots: one start each; black bar: the median; → the status of the first response. Rows that answer 200 do "
            "the real work: login and a password change hash a password (600,000 iterations), on purpose slow.")
    if summarised:
        note += " Bars without dots: p10–p90 only (no samples in this run)."
    return save(fig, "cold-starts", out, note.rstrip("."), r)


# ------------------------------------------------------------------------------------ PBKDF2
def kdf_chart(r, out):
    floor = r.get("floor_ms")
    rows = []
    if floor:
        rows.append(("hardware floor: 1.2M SHA-256 compressions\n(openssl speed)", floor, FLOOR))
    for name, v in (r.get("kdf") or {}).items():
        color = RUST if "ours" in name else FLOOR if name.startswith("floor") else OTHER
        label = {"auth-shared kdf (ours)": "ours (auth-shared kdf)",
                 "floor: 1,200,000 compressions, 16 KiB per call": "floor in criterion:\n16 KiB per compress256 call",
                 "chain: 1,200,000 single-block compress256 calls": "one compress256 call per block",
                 "pbkdf2 crate": "RustCrypto pbkdf2 crate"}.get(name, name)
        rows.append((label, v["median_ms"], color))
    if r.get("hashlib"):
        rows.append(("Python hashlib.pbkdf2_hmac\n(the Flask peer)", r["hashlib"]["median"], FLASK))
    if not rows:
        return None
    rows.sort(key=lambda x: x[1], reverse=True)  # barh draws bottom-up: the fastest on top
    fig, ax = plt.subplots(figsize=(10, 0.55 * len(rows) + 1.6), layout="constrained")
    ys = range(len(rows))
    ax.barh(ys, [v for _, v, _ in rows], color=[c for _, _, c in rows], height=0.62, zorder=2)
    for y, (_, v, _) in zip(ys, rows, strict=False):
        ratio = f"  {v / floor:.2f}×" if floor else ""
        ax.annotate(f"{v:.1f} ms{ratio}", (v, y), xytext=(-5, 0), textcoords="offset points", va="center",
                    ha="right", fontsize=9, color="white", fontweight="bold")
    if floor:  # behind the bars: it shows between them and never crosses a label
        ax.axvline(1.15 * floor, color=TARGET, ls="--", lw=1.2, zorder=1)
        ax.text(1.15 * floor, len(rows) - 0.45, " target: 1.15× floor", color=TARGET, fontsize=8)
    ax.set_yticks(list(ys), [label for label, _, _ in rows])
    ax.set_ylim(-0.6, len(rows) - 0.1)
    ax.set_xlim(0, max(v for _, v, _ in rows) * 1.08)
    ax.set_xlabel("milliseconds for one hash (median; shorter is better); in the bars: ms and × the floor")
    ax.grid(axis="y", visible=False)
    fig.suptitle("One PBKDF2-HMAC-SHA256 at 600,000 iterations against the SHA-256 floor", fontweight="bold")
    return save(fig, "pbkdf2", out, "x86-64 only: for Graviton (arm64), run `make bench-kdf` there; no Graviton "
                                    "machine is measured here", r)


# -------------------------------------------------------------------------------------- cost
MEMORY_SIZES = (128, 256, 512, 1024, 1769, 3008)


def cost_rows(r):
    """(label, cpu ms, wall ms, colour, line style) per workload, from what the run measured."""
    hp = r.get("http", {})
    by = {f["function"]: f for f in r.get("lambda", {}).get("functions", [])}
    rows = []

    def fn(label, key, color, style):
        if key in by:
            rows.append((label, by[key]["cpu_ms_per_request"], by[key]["warm_ms"]["median"], color, style))

    def peer(label, ep, color, style):
        f = hp.get("flask", {}).get(ep)
        if f and "serial_p50_ms" in f:
            rows.append((label, f["cpu_ms_per_request"], f["serial_p50_ms"], color, style))

    fn("login, Rust", "login", RUST, "-")
    peer("login, Flask", "/login", FLASK, "-")
    fn("profile, Rust", "profile", RUST, "--")
    peer("profile, Flask", "/profile", FLASK, "--")
    fn("refresh, Rust", "refresh (rotation)", RUST, ":")
    fn("logout, Rust", "logout (bearer, local scope)", RUST, "-.")
    return rows


def cost_chart(r, out):
    rows = cost_rows(r)
    if not rows:
        return None
    # Two panels with their own scales: logins cost dollars, token requests cents, and on one
    # axis the second would be a flat line at the bottom.
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), layout="constrained")
    panels = ((axes[0], "Logins (one PBKDF2 hash each)", [x for x in rows if x[0].startswith("login")]),
              (axes[1], "Token requests (no hash)", [x for x in rows if not x[0].startswith("login")]))
    for ax, title, subset in panels:
        top = 0.0
        for label, cpu, wall, color, style in subset:
            costs = [lambda_cost(cpu, wall, mem)[0] for mem in MEMORY_SIZES]
            top = max(top, *costs)
            ax.plot(MEMORY_SIZES, costs, color=color, ls=style, marker="o", ms=4,
                    label=f"{label}: ${costs[0]:.2f} at 128 MB, ${costs[4]:.2f} at 1769 MB".replace("$", r"\$"))
        if not subset:
            ax.text(0.5, 0.5, "not in this run", transform=ax.transAxes, ha="center", color="#6b7280")
        ax.axvline(1769, color=OTHER, ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_xticks(MEMORY_SIZES, [str(m) for m in MEMORY_SIZES])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_ylim(0, top * 1.45 if top else 1)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"${v:.2f}".replace("$", r"\$")))
        ax.set_xlabel("Lambda memory size, MB (1769 MB: one full vCPU)")
        ax.set_ylabel("dollars per million requests")
        ax.set_title(title)
        ax.legend(loc="upper left", fontsize=8)
    axes[1].axhline(0.20, color=OTHER, ls="--", lw=1)
    axes[1].text(MEMORY_SIZES[-1], 0.195, "the request fee alone", ha="right", va="top", fontsize=8, color="#6b7280")
    fig.suptitle("Cost of one million requests on Lambda arm64, by memory size", fontweight="bold")
    return save(fig, "cost", out, "us-east-1: $0.0000133334 per GB-s billed per ms, plus $0.20 per million requests. "
                                  "CPU time stretches below 1769 MB (less than a vCPU); database waits do not; "
                                  "above it a single-threaded request gets no faster", r)


CHARTS = (("http", "Throughput and p99 against the Flask and Node.js peers", http_chart),
          ("durable", "The write paths with and without durable commits", durable_chart),
          ("scale", "Which part gives out first", scale_chart),
          ("cold-starts", "Cold starts per function", cold_start_chart),
          ("pbkdf2", "PBKDF2 against the floor and the peers", kdf_chart),
          ("cost", "Cost per million requests by memory size", cost_chart))


def draw(results, out=OUT):
    """Draws every chart the results allow; returns [(name, title, path relative to bench/)]."""
    drawn = []
    for name, title, fn in CHARTS:
        try:
            path = fn(results, out)
        except (KeyError, TypeError, ValueError, ZeroDivisionError) as e:
            print(f"charts: {name} left out: {e!r}", file=sys.stderr)
            continue
        if path:
            drawn.append((name, title, path))
    return drawn


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--png"]
    src = Path(args[0]) if args else ROOT / "bench" / "results.json"
    out = Path(args[1]) if len(args) > 1 else OUT
    for _name, _title, path in draw(json.loads(src.read_text()), out):
        print(path)
