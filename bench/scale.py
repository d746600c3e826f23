"""Scale on paper: what 100, 1,000 and 10,000 logins per second need, with the refreshes their
clients make while they stay active, computed from a `make bench` run's figures.

    python3 bench/scale.py [bench/results.json]      # prints the Markdown section

run.py calls `section()` and puts the result in bench/RESULTS.md. Every input is either measured
(results.json: each function's CPU and warm wall time per request behind the Runtime API
emulator; PostgreSQL's CPU, transactions and WAL flushes per request from the write-path run with
fsync, synchronous_commit and full_page_writes on) or counted from the SQL (ROUND_TRIPS below,
each with the statements it comes from). The assumptions about clients and AWS are the constants
under "Assumptions" and "Published limits", each named (the AWS ones with the page they come
from), so a reader can change one and rerun. A measured figure that is missing, zero or negative
stops the script: nothing is divided by a figure that cannot be right.
"""
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pricing import lambda_cost  # noqa: E402  (one pricing model for all tables)

ROOT = Path(__file__).resolve().parent.parent

# ------------------------------------------------------------------------ counted from the SQL
# Statements (network round trips) per request, transaction control included:
ROUND_TRIPS = {
    # BEGIN, throttle::lock_key, users::find_by_identifier, throttle::status,
    # users::record_login, sessions::open, COMMIT (+ sessions::purge at one login in 16).
    "login": 7 + 1 / 16,
    # SELECT ... FROM auth_refresh(...): the lock, the read, the rotation and the account's
    # times run inside the database, in the statement's own transaction.
    "refresh": 1,
    # sessions::find_user (auth_find_user): one read.
    "profile": 1,
}
# Whether the request's transaction spans its Lambda CPU time: login holds the transaction (and
# the throttle key's advisory lock) across the password hash; refresh signs its token after the
# commit, and a profile read is one statement.
TRANSACTION_SPANS_CPU = {"login": True, "refresh": False, "profile": False}

# ---------------------------------------------------------------------------- Assumptions
# How long a client stays active after a login, refreshing its access token as it runs out: a
# working day (refresh tokens last 30 days, SESSION_TTL_SECONDS; most clients stay signed in).
# By Little's law, active clients = logins/s × this; refreshes/s = active clients ÷ TTL.
ACTIVE_SECONDS_PER_LOGIN = 8 * 3600
TOKEN_TTL_SECONDS = 3600  # the default (docs/configuration.md)
MEMORY_MB = {"login": 1769, "refresh": 128, "profile": 128}  # template.yaml
DB_RTT_MS = 0.5  # one statement's round trip inside a VPC, same AZ
PROXY_RTT_MS = 1.0  # the same through RDS Proxy, which adds a hop
DB_POOL_PER_CONTAINER = 1  # DB_POOL_MAX_SIZE's default in Lambda (one invocation at a time)
DB_CPU_UTILISATION = 0.6  # plan the database's vCPUs at 60 % busy
IOPS_UTILISATION = 0.5  # and its storage at half its IOPS: checkpoints and vacuum write too
SECONDS_PER_MONTH = 730 * 3600

# ------------------------------------------------------------------------ Published limits
# AWS Lambda Developer Guide, "Lambda quotas": 1,000 concurrent executions per Region by default
# (a quota increase raises it to tens of thousands).
LAMBDA_ACCOUNT_CONCURRENCY = 1000
# AWS Lambda Developer Guide, "Lambda scaling behavior": each function scales by up to 1,000
# concurrent executions every 10 seconds.
LAMBDA_SCALING_PER_10S = 1000
# Amazon RDS User Guide, "Maximum number of database connections" (PostgreSQL): the default
# max_connections is LEAST({DBInstanceClassMemory/9531392}, 5000).
MAX_CONNECTIONS_CAP = 5000
# Amazon RDS User Guide, "Amazon RDS DB instance storage", General Purpose SSD (gp3): RDS for
# PostgreSQL volumes of 400 GiB and more have a baseline of 12,000 IOPS (3,000 below), and up to
# 64,000 provisioned; Provisioned IOPS SSD (io2 Block Express) up to 256,000.
GP3_BASELINE_IOPS = 12_000
GP3_MAX_IOPS = 64_000
IO2_MAX_IOPS = 256_000
# RDS for PostgreSQL, Graviton memory-optimised, on-demand, single-AZ, us-east-1, per hour
# (approximate list prices; Multi-AZ doubles them): (name, vCPUs, GiB, dollars per hour).
# db.r6g.16xlarge (64 vCPUs) is the largest of the class in the RDS User Guide's "DB instance
# classes" table.
DB_CLASSES = [("db.r6g.large", 2, 16, 0.225), ("db.r6g.xlarge", 4, 32, 0.45), ("db.r6g.2xlarge", 8, 64, 0.899),
              ("db.r6g.4xlarge", 16, 128, 1.798), ("db.r6g.8xlarge", 32, 256, 3.597),
              ("db.r6g.12xlarge", 48, 384, 5.395), ("db.r6g.16xlarge", 64, 512, 7.194)]
PROXY_PRICE_VCPU_HOUR = 0.015  # RDS Proxy, per vCPU of the instance behind it


def max_connections(gib):
    """RDS for PostgreSQL's default max_connections for a class with `gib` of memory (about 90 %
    of it is DBInstanceClassMemory)."""
    return min(int(gib * 2**30 * 0.9 / 9531392), MAX_CONNECTIONS_CAP)


class Missing(ValueError):
    """A figure the plan needs is not in the results, or cannot be right (zero or negative)."""


def positive(value, what, missing):
    if value is None:
        missing.append(f"{what}: not measured")
    elif not value > 0:
        missing.append(f"{what}: {value!r} is not positive")
    return value


def measured(r):
    """Per operation: Lambda CPU ms and warm wall ms (the function behind the emulator, a full
    core here), PostgreSQL CPU ms, transactions and WAL flushes per request (durable run; the
    profile read from the HTTP run: a read writes no WAL)."""
    by = {f["function"]: f for f in r.get("lambda", {}).get("functions", [])}
    durable = r.get("write_paths", {}).get("durable", {})
    http = r.get("http", {}).get("rust", {})
    out, missing = {}, []
    for op, fn, src, ep in (("login", "login", durable, "/login"), ("refresh", "refresh (rotation)", durable, "/refresh"),
                            ("profile", "profile", http, "/profile")):
        f, h = by.get(fn, {}), src.get(ep, {})
        where = "write_paths.durable" if src is durable else "http.rust"
        out[op] = {
            "cpu_ms": positive(f.get("cpu_ms_per_request"), f"lambda {fn} CPU per request", missing),
            "wall_ms": positive(f.get("warm_ms", {}).get("median"), f"lambda {fn} warm median", missing),
            "pg_cpu_ms": positive(h.get("pg_cpu_ms_per_request"), f"{where}.{ep} PostgreSQL CPU per request", missing),
            "commits": h.get("commits_per_request", 0),
            "wal_syncs": h.get("wal_syncs_per_request", 0) if src is durable else 0,
        }
        if src is durable:
            positive(h.get("commits_per_request"), f"{where}.{ep} transactions per request", missing)
            positive(h.get("wal_syncs_per_request"), f"{where}.{ep} WAL flushes per request", missing)
    if missing:
        raise Missing("; ".join(missing))
    return out


def per_op(m, op, proxy):
    """Duration at the function's memory size (database round trips added), cost per request."""
    rtt = (PROXY_RTT_MS if proxy else DB_RTT_MS) * ROUND_TRIPS[op]
    cost, duration = lambda_cost(m[op]["cpu_ms"], m[op]["wall_ms"] + rtt, MEMORY_MB[op])
    return duration, cost / 1e6


def scenario(m, logins):
    """What one load needs: `logins` per second and the refreshes of the clients they keep
    active."""
    active = logins * ACTIVE_SECONDS_PER_LOGIN
    rates = {"login": logins, "refresh": active / TOKEN_TTL_SECONDS}
    out = {"rates": rates, "active_clients": active}
    conc = {op: rate * per_op(m, op, False)[0] / 1000 for op, rate in rates.items()}  # Little's law
    out["direct"] = conc
    out["lambda_concurrency"] = sum(conc.values())
    # From nothing (a cold region, a failover to another), the busiest function reaches its
    # concurrency at LAMBDA_SCALING_PER_10S per 10 s.
    out["ramp_s"] = 10 * math.ceil(max(conc.values()) / LAMBDA_SCALING_PER_10S)
    out["connections_direct"] = math.ceil(out["lambda_concurrency"] * DB_POOL_PER_CONTAINER)

    def held_ms(op):  # through RDS Proxy a connection is lent per transaction
        if TRANSACTION_SPANS_CPU[op]:
            return per_op(m, op, True)[0]
        return ROUND_TRIPS[op] * PROXY_RTT_MS + m[op]["pg_cpu_ms"]

    out["connections_proxy"] = math.ceil(sum(rate * held_ms(op) / 1000 for op, rate in rates.items()))
    out["commits_per_s"] = sum(rate * m[op]["commits"] for op, rate in rates.items())
    out["wal_flushes_per_s"] = sum(rate * m[op]["wal_syncs"] for op, rate in rates.items())
    out["db_vcpus"] = sum(rate * m[op]["pg_cpu_ms"] / 1000 for op, rate in rates.items()) / DB_CPU_UTILISATION
    out["lambda_dollars_month"] = sum(rate * per_op(m, op, False)[1] for op, rate in rates.items()) * SECONDS_PER_MONTH
    fits = [c for c in DB_CLASSES if c[1] >= out["db_vcpus"]]
    out["db_class"] = fits[0] if fits else None
    out["db_class_direct"] = next((c for c in fits if max_connections(c[2]) >= out["connections_direct"]), None)
    return out


def limits(s):
    """Each limit a load meets, as need ÷ what there is (over 1: it gives out)."""
    biggest = DB_CLASSES[-1]
    instance = s["db_class"] or biggest
    return {
        "lambda": s["lambda_concurrency"] / LAMBDA_ACCOUNT_CONCURRENCY,
        "connections": s["connections_direct"] / max_connections(instance[2]),
        "database": s["db_vcpus"] / biggest[1],
        "wal": s["wal_flushes_per_s"] / (GP3_BASELINE_IOPS * IOPS_UTILISATION),
    }


LIMIT_NAMES = {
    "lambda": f"Lambda concurrency against the default Region quota of {LAMBDA_ACCOUNT_CONCURRENCY:,}",
    "connections": "database connections without a proxy against the instance's default max_connections",
    "database": f"PostgreSQL CPU (at {DB_CPU_UTILISATION:.0%} busy) against the largest instance listed, "
                f"{DB_CLASSES[-1][0]} ({DB_CLASSES[-1][1]} vCPUs)",
    "wal": f"WAL flushes against half the {GP3_BASELINE_IOPS:,} IOPS of gp3 storage",
}
REMEDIES = {
    "lambda": "**Lambda concurrency**: ask for a higher Region quota before launch, mind the scaling rate "
              f"({LAMBDA_SCALING_PER_10S:,} more concurrent executions per function every 10 seconds: the ramp row), "
              "and give login reserved concurrency (`LoginReservedConcurrency`) so a flood of refreshes cannot "
              "starve it, nor logins the rest.",
    "connections": "**Database connections**: every warm container keeps its own connection, and a login holds it "
                   "for its whole transaction, hash included (the throttle key's lock is held across the hash on "
                   "purpose: see `functions/login`). RDS Proxy lends connections per transaction (the code keeps no "
                   "session state between transactions: transaction-scoped advisory locks, no `SET`, no kept "
                   "prepared statements): the proxy row of the table.",
    "database": "**PostgreSQL's CPU**: refreshes are most of it. The first lever is the access-token lifetime: "
                "refreshes per second are active clients ÷ TOKEN_TTL_SECONDS, so doubling the TTL halves them "
                "(and lengthens how long a token outlives its session where only the signature is checked).",
    "wal": "**WAL flushes**: every login and refresh commits, and a durable commit waits for its WAL flush; "
           "PostgreSQL groups the commits that arrive during one flush into the next, which is what the measured "
           "flushes per request already count, at the run's 16 concurrent clients. With more commits in flight "
           "more of them share each flush, so flushes per request fall as the load rises and this row overstates "
           "the need: it is the bound to plan storage against, not a forecast. Provisioned IOPS (gp3 up to "
           f"{GP3_MAX_IOPS:,}, io2 Block Express up to {IO2_MAX_IOPS:,}) or Aurora's log-only storage raise it.",
}


def money(v):
    return f"${v:,.0f}" if v >= 100 else f"${v:,.2f}"


def table(r):
    m = measured(r)
    rows = [(f"{n:,} logins/s", scenario(m, n)) for n in (100, 1_000, 10_000)]
    lines = ["| | " + " | ".join(label for label, _ in rows) + " |", "| --- " * (len(rows) + 1) + "|"]

    def row(name, fmt):
        lines.append(f"| {name} | " + " | ".join(fmt(s) for _, s in rows) + " |")

    row(f"active clients (logins/s × {ACTIVE_SECONDS_PER_LOGIN / 3600:.0f} h)", lambda s: f"{s['active_clients']:,.0f}")
    row(f"refreshes/s (active clients ÷ TOKEN_TTL_SECONDS {TOKEN_TTL_SECONDS})", lambda s: f"{s['rates']['refresh']:,.0f}")
    row("Lambda concurrency (Little's law: rate × duration)", lambda s: f"{s['lambda_concurrency']:,.0f} "
        f"(login {s['direct']['login']:,.0f}, refresh {s['direct']['refresh']:,.0f})")
    row(f"… against the default Region quota of {LAMBDA_ACCOUNT_CONCURRENCY:,}",
        lambda s: f"{s['lambda_concurrency'] / LAMBDA_ACCOUNT_CONCURRENCY:.0%}")
    row(f"… time to scale to it from nothing ({LAMBDA_SCALING_PER_10S:,} per function per 10 s)", lambda s: f"{s['ramp_s']} s")
    row("database connections, direct (one per warm container)", lambda s: f"{s['connections_direct']:,}")
    row("database connections through RDS Proxy (transactions in flight)", lambda s: f"{s['connections_proxy']:,}")
    row("transactions per second (measured per request)", lambda s: f"{s['commits_per_s']:,.0f}")
    row("WAL flushes per second (measured per request, durable)", lambda s: f"{s['wal_flushes_per_s']:,.0f}")
    row(f"PostgreSQL vCPUs at {DB_CPU_UTILISATION:.0%} busy", lambda s: f"{s['db_vcpus']:.2f}")
    row("smallest instance with those vCPUs (default max_connections)",
        lambda s: f"{s['db_class'][0]} ({max_connections(s['db_class'][2]):,})" if s["db_class"] else
        "none: more than one primary")
    row("… that also takes the direct connections",
        lambda s: s["db_class_direct"][0] if s["db_class_direct"] else "none: needs RDS Proxy")
    row("Lambda dollars a month (requests + GB-seconds)", lambda s: money(s["lambda_dollars_month"]))

    def db_month(s, proxy):
        c = s["db_class"] if proxy else s["db_class_direct"]
        if not c:
            return None
        return c[3] * 730 * (1 + (PROXY_PRICE_VCPU_HOUR * c[1] / c[3] if proxy else 0))

    row("database dollars a month: instance, direct / with RDS Proxy (single-AZ)",
        lambda s: f"{money(db_month(s, False)) if db_month(s, False) else '–'} / "
                  f"{money(db_month(s, True)) if db_month(s, True) else '–'}")
    return m, rows, "\n".join(lines)


def verdicts(rows):
    """Which part gives out first at each load, and what to change, in the order they give out."""
    out = []
    for label, s in rows:
        lim = limits(s)
        first = max(lim, key=lim.get)
        shares = "; ".join(f"{LIMIT_NAMES[k]} {v:.1%}" for k, v in lim.items())
        state = "gives out" if lim[first] > 1 else "is the closest to its limit"
        out.append(f"- {label}: {shares}. First: {LIMIT_NAMES[first].split(' against')[0]} {state}.")
    top = limits(rows[-1][1])
    order = sorted(top, key=top.get, reverse=True)
    out += ["", "What to change, in the order the parts give out at the highest load:"]
    out += [f"{i}. {REMEDIES[k]}" for i, k in enumerate(order, 1)]
    return out


PAST_ONE_PRIMARY = [
    "Past one primary:",
    "1. **Aurora PostgreSQL with RDS Proxy, readers for /profile.** The schema, the migrations and the SQL stay "
    "as they are (Aurora PostgreSQL is PostgreSQL; the functions in the migrations run unchanged). Aurora's "
    "storage takes the WAL flushes off the instance's volume (a commit is acknowledged by four of six copies "
    "across three AZs: Amazon Aurora User Guide, \"Amazon Aurora storage\"), and up to 15 Aurora Replicas "
    "serve reads. What changes in the code: a second pool for reads, with a reader endpoint URL "
    "(`DATABASE_URL` beside a `DATABASE_READ_URL`), used by `/profile`'s `sessions::find_user`. A reader lags "
    "the writer (typically well under 100 ms, the same guide says): a token whose session ended a moment ago "
    "could still read as live there, so either accept that lag for /profile (it is shorter than any access "
    "token's life, which outlives a logout anyway where only the signature is checked) or keep the session "
    "check on the writer and move only the account read.",
    "2. **Past the largest writer, the sessions move to a store that shards.** Refreshes and logouts are "
    "session writes keyed by session id: Amazon DynamoDB (a table keyed by session id, refresh tokens by hash, "
    "rotation as one `TransactWriteItems` with a condition on the presented token) or Aurora PostgreSQL "
    "Limitless Database (sharded by session id). Users, the throttle and the factors stay on the PostgreSQL "
    "primary: logins are CPU in Lambda, not in the database. What changes in the code: `shared/src/sessions.rs` "
    "is the one module with session SQL (`auth_refresh` and `auth_find_user` in the migrations), so the store "
    "changes there; the password change, which today ends sessions and changes the hash in one transaction, "
    "would end them after its commit instead, with the account's `password_changed_at` (kept on the primary) "
    "checked by `auth_find_user`'s replacement for tokens older than the change.",
]


def section(r):
    """The Markdown section for RESULTS.md."""
    m, rows, tbl = table(r)
    inputs = "; ".join(f"{op}: Lambda CPU {v['cpu_ms']:.2f} ms, warm {v['wall_ms']:.2f} ms, PostgreSQL CPU "
                       f"{v['pg_cpu_ms']:.4f} ms, {v['commits']:.4f} transactions and {v['wal_syncs']:.4f} WAL flushes"
                       for op, v in m.items())
    derived = "; ".join(f"{op}: {ROUND_TRIPS[op]:.3g} statements, {per_op(m, op, False)[0]:.2f} ms at "
                        f"{MEMORY_MB[op]} MB with the round trips ({per_op(m, op, True)[0]:.2f} ms through the proxy), "
                        f"a connection held {per_op(m, op, True)[0] if TRANSACTION_SPANS_CPU[op] else ROUND_TRIPS[op] * PROXY_RTT_MS + m[op]['pg_cpu_ms']:.2f} ms "
                        "through the proxy" for op in ("login", "refresh"))
    classes = ", ".join(f"{name} {vcpus} vCPUs / {gib} GiB / max_connections {max_connections(gib):,} / ${price}/h"
                        for name, vcpus, gib, price in DB_CLASSES)
    lines = [
        "## Scale, on paper", "",
        "Computed by `bench/scale.py` from this run's figures per request (" + inputs + "). The write paths' "
        "PostgreSQL figures come from the durable run above (fsync, synchronous_commit and full_page_writes on); "
        "the profile read's from the HTTP run (a read flushes no WAL). Lambda durations are the measured warm ones "
        f"stretched to the template's memory sizes (login {MEMORY_MB['login']} MB, refresh {MEMORY_MB['refresh']} MB) "
        f"plus {DB_RTT_MS} ms per statement ({PROXY_RTT_MS} ms through RDS Proxy; the run here talks to PostgreSQL "
        f"on loopback). Refreshes: each login keeps a client active for {ACTIVE_SECONDS_PER_LOGIN / 3600:.0f} h "
        f"(an assumption, in the script), which refreshes every TOKEN_TTL_SECONDS ({TOKEN_TTL_SECONDS} s). The "
        "limits are AWS's published ones, named in the script beside the page each comes from. Prices: Lambda "
        "arm64 and approximate RDS on-demand list prices, us-east-1, no free tier.", "",
        "Per request, as the table uses them: " + derived + ". The load is logins and their refreshes; "
        "/profile reads are left out of it (their PostgreSQL CPU is listed for reference: past one primary they "
        "go to readers, below). Instances: " + classes + ". Rounding: each cell is rounded only when printed; "
        "concurrency and connections are rounded up.", "",
        "Arithmetic, one column by hand: refreshes/s = logins/s × "
        f"{ACTIVE_SECONDS_PER_LOGIN} ÷ {TOKEN_TTL_SECONDS}; concurrency = Σ rate × duration; PostgreSQL vCPUs = "
        f"Σ rate × PostgreSQL CPU ms ÷ 1000 ÷ {DB_CPU_UTILISATION}; WAL flushes/s = Σ rate × flushes per request; "
        "connections through the proxy = Σ rate × time each transaction holds one.", "",
        tbl, "",
        "Which part gives out first:", *verdicts(rows), "", *PAST_ONE_PRIMARY, "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "bench" / "results.json"
    try:
        print(section(json.loads(src.read_text())))
    except Missing as e:
        sys.exit(f"scale.py: these figures are missing or cannot be right in {src}: {e} (run `make bench`)")
