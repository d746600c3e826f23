"""Scale on paper: what 100, 1,000 and 10,000 logins per second (and ten times as many refreshes)
need, computed from a `make bench` run's figures, so the README's scale section stays true.

    python3 bench/scale.py [bench/results.json]      # prints the Markdown section

run.py calls `section()` and puts the result in bench/RESULTS.md. Every input is either measured
(results.json: per-request CPU of each function behind the Runtime API emulator, its warm wall
time, PostgreSQL's CPU per request under the HTTP load) or counted from the SQL (ROWS and
ROUND_TRIPS below, each with the statement it comes from); the assumptions about AWS (limits,
prices, network round trips) are the constants under "AWS", each named, so a reader can change
one and rerun.
"""
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pricing import lambda_cost  # noqa: E402  (one pricing model for all tables)

ROOT = Path(__file__).resolve().parent.parent

# ------------------------------------------------------------------------ counted from the SQL
# Rows each operation writes when it runs (INSERT/UPDATE/DELETE), read from the statements:
ROWS = {
    # users::record_login: UPDATE users (last_login_at, maybe the upgraded hash), 1 row; its
    # DELETE of the account's throttle row only matches after failures (0 in steady state);
    # sessions::open: INSERT sessions + INSERT refresh_tokens, 1 row each.
    "login": 3,
    # throttle::record_failure: INSERT ... ON CONFLICT DO UPDATE login_throttle, 1 row.
    "failed login": 1,
    # sessions::refresh, the function auth_refresh (migration 0005_session_functions): SELECT ... FOR UPDATE of the
    # session (locks the row it then updates), then UPDATE refresh_tokens (consumed_at), INSERT
    # refresh_tokens (the successor), UPDATE sessions (refreshed_at).
    "refresh": 3,
    # sessions::find_user: reads only.
    "profile": 0,
}
# Rows removed later for each row a login or refresh adds: sessions::purge deletes ended and
# expired sessions (100 at a time, at one login in sixteen) and their refresh tokens cascade
# (ON DELETE CASCADE); throttle::purge_expired removes stale failure counts. So in steady state
# every inserted session or token row is deleted once more.
LATER_DELETES = {"login": 2, "failed login": 1, "refresh": 1, "profile": 0}
# Statements (network round trips) per request, transaction control included:
ROUND_TRIPS = {
    # BEGIN, throttle::lock_key, users::find_by_identifier, throttle::status,
    # users::record_login, sessions::open, COMMIT (+ sessions::purge at one login in 16).
    "login": 7 + 1 / 16,
    # BEGIN, lock_key, find_by_identifier, status, record_failure, COMMIT, purge_expired.
    "failed login": 7,
    # SELECT ... FROM auth_refresh(...): the lock, the read, the rotation and the account's
    # times run inside the database, in the statement's own transaction.
    "refresh": 1,
    # sessions::find_user.
    "profile": 1,
}
# Whether the request's transaction spans its Lambda CPU time: login holds the transaction (and
# the throttle key's advisory lock) across the password hash; refresh signs its token after the
# commit, and a profile read is one statement.
TRANSACTION_SPANS_CPU = {"login": True, "failed login": True, "refresh": False, "profile": False}

# ------------------------------------------------------------------------------------- AWS
MEMORY_MB = {"login": 1769, "failed login": 1769, "refresh": 128, "profile": 128}  # template.yaml
DB_RTT_MS = 0.5  # one statement's round trip inside a VPC, same AZ (assumption)
PROXY_RTT_MS = 1.0  # the same through RDS Proxy, which adds a hop (assumption)
LAMBDA_ACCOUNT_CONCURRENCY = 1000  # default per region; raised on request to tens of thousands
DB_POOL_PER_CONTAINER = 1  # DB_POOL_MAX_SIZE's default in Lambda (one invocation at a time)
DB_CPU_UTILISATION = 0.6  # leave headroom: plan the database's vCPUs at 60 % busy
SECONDS_PER_MONTH = 730 * 3600
# RDS for PostgreSQL, Graviton memory-optimised, on-demand, single-AZ, us-east-1, per hour
# (approximate list prices; Multi-AZ doubles them): (name, vCPUs, GiB, dollars per hour).
DB_CLASSES = [("db.r6g.large", 2, 16, 0.225), ("db.r6g.xlarge", 4, 32, 0.45), ("db.r6g.2xlarge", 8, 64, 0.899),
              ("db.r6g.4xlarge", 16, 128, 1.798), ("db.r6g.8xlarge", 32, 256, 3.597),
              ("db.r6g.12xlarge", 48, 384, 5.395), ("db.r6g.16xlarge", 64, 512, 7.194)]
PROXY_PRICE_VCPU_HOUR = 0.015  # RDS Proxy, per vCPU of the instance behind it


def max_connections(gib):
    """RDS for PostgreSQL's default: LEAST(DBInstanceClassMemory / 9531392, 5000)."""
    return min(int(gib * 2**30 * 0.9 / 9531392), 5000)  # about 90 % of the class's memory is usable


class Missing(Exception):
    """A figure the table needs is not in the results."""


def measured(r):
    """Per operation: Lambda CPU ms, warm wall ms (on a full core here) and PostgreSQL CPU ms."""
    by = {f["function"]: f for f in r.get("lambda", {}).get("functions", [])}
    http = r.get("http", {}).get("rust", {})
    out, missing = {}, []
    for op, fn, ep in (("login", "login", "/login"), ("refresh", "refresh (rotation)", "/refresh"),
                       ("profile", "profile", "/profile")):
        f, h = by.get(fn), http.get(ep, {})
        if not f:
            missing.append(f"lambda: {fn}")
            continue
        if "pg_cpu_ms_per_request" not in h:
            missing.append(f"http.rust.{ep}.pg_cpu_ms_per_request")
            continue
        out[op] = {"cpu_ms": f["cpu_ms_per_request"], "wall_ms": f["warm_ms"]["median"],
                   "pg_cpu_ms": h["pg_cpu_ms_per_request"]}
    if missing:
        raise Missing(", ".join(missing))
    # A failed login costs what a successful one does (the same hash; see the enumeration table)
    # in Lambda; in the database, one throttle upsert instead of three writes: priced as a login.
    out["failed login"] = dict(out["login"])
    return out


def per_op(m, op, proxy):
    """Duration at the function's memory size (database round trips added), cost per request."""
    rtt = (PROXY_RTT_MS if proxy else DB_RTT_MS) * ROUND_TRIPS[op]
    cost, duration = lambda_cost(m[op]["cpu_ms"], m[op]["wall_ms"] + rtt, MEMORY_MB[op])
    return duration, cost / 1e6


def scenario(m, logins, refreshes, profiles=0, failed_share=0.0):
    """What one load needs. Rates per second."""
    rates = {"login": logins * (1 - failed_share), "failed login": logins * failed_share,
             "refresh": refreshes, "profile": profiles}
    out = {"rates": rates}
    # Little's law: requests in flight = rate × duration.
    conc = {op: rate * per_op(m, op, False)[0] / 1000 for op, rate in rates.items()}
    out["direct"] = conc
    out["lambda_concurrency"] = sum(conc.values())
    # Without a proxy every warm container keeps its pooled connection, busy or not: at least
    # the concurrency (more while traffic falls and containers idle).
    out["connections_direct"] = math.ceil(sum(conc.values()) * DB_POOL_PER_CONTAINER)

    # With RDS Proxy a connection is borrowed per transaction: as many as are in flight, each
    # for its statements' round trips and the database's own work, plus the function's CPU
    # where the transaction spans it (login's hash).
    def held_ms(op):
        if TRANSACTION_SPANS_CPU[op]:
            return per_op(m, op, True)[0]
        return ROUND_TRIPS[op] * PROXY_RTT_MS + m[op]["pg_cpu_ms"]

    out["connections_proxy"] = math.ceil(sum(rate * held_ms(op) / 1000 for op, rate in rates.items()))
    out["rows_per_s"] = sum(rate * ROWS[op] for op, rate in rates.items())
    out["rows_later_per_s"] = sum(rate * LATER_DELETES[op] for op, rate in rates.items())
    out["commits_per_s"] = sum(rate for op, rate in rates.items() if ROWS[op])
    out["db_vcpus"] = sum(rate * m[op]["pg_cpu_ms"] / 1000 for op, rate in rates.items()) / DB_CPU_UTILISATION
    out["lambda_dollars_month"] = sum(rate * per_op(m, op, False)[1] for op, rate in rates.items()) * SECONDS_PER_MONTH
    need_cpu, need_conn = out["db_vcpus"], out["connections_direct"]
    fits = [c for c in DB_CLASSES if c[1] >= need_cpu]
    out["db_class"] = fits[0] if fits else None
    out["db_class_direct"] = next((c for c in fits if max_connections(c[2]) >= need_conn), None)
    return out


def money(v):
    return f"${v:,.0f}" if v >= 100 else f"${v:,.2f}"


def table(r):
    m = measured(r)
    loads = [(n, 10 * n) for n in (100, 1_000, 10_000)]
    rows = [(f"{n:,} logins/s + {k:,} refreshes/s", scenario(m, n, k)) for n, k in loads]
    lines = ["| | " + " | ".join(label for label, _ in rows) + " |", "| --- " * (len(rows) + 1) + "|"]

    def row(name, fmt):
        lines.append(f"| {name} | " + " | ".join(fmt(s) for _, s in rows) + " |")

    row("Lambda concurrency (Little's law: rate × duration)", lambda s: f"{s['lambda_concurrency']:,.0f} "
        f"(login {s['direct']['login']:,.0f}, refresh {s['direct']['refresh']:,.0f})")
    row(f"… against the default account limit of {LAMBDA_ACCOUNT_CONCURRENCY:,}",
        lambda s: f"{s['lambda_concurrency'] / LAMBDA_ACCOUNT_CONCURRENCY:.0%}")
    row("database connections, direct (one per warm container)", lambda s: f"{s['connections_direct']:,}")
    row("database connections through RDS Proxy (transactions in flight)", lambda s: f"{s['connections_proxy']:,}")
    row("rows written per second (+ removed later by the purges)",
        lambda s: f"{s['rows_per_s']:,.0f} (+ {s['rows_later_per_s']:,.0f})")
    row("commits per second (each a WAL flush, grouped under load)", lambda s: f"{s['commits_per_s']:,.0f}")
    row(f"PostgreSQL vCPUs at {DB_CPU_UTILISATION:.0%} busy", lambda s: f"{s['db_vcpus']:.1f}")
    row("smallest instance with those vCPUs (max_connections)",
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


def limits(s):
    """Each limit a load meets, as need ÷ what there is (over 1: it gives out)."""
    biggest = DB_CLASSES[-1]
    instance = s["db_class"] or biggest
    return {
        "lambda": s["lambda_concurrency"] / LAMBDA_ACCOUNT_CONCURRENCY,
        "connections": s["connections_direct"] / max_connections(instance[2]),
        "database": s["db_vcpus"] / biggest[1],
    }


LIMIT_NAMES = {
    "lambda": "Lambda concurrency against the account's default limit",
    "connections": "database connections without a proxy against the instance's max_connections",
    "database": "PostgreSQL CPU against the largest single primary listed",
}
REMEDIES = {
    "lambda": "**Lambda concurrency**: ask for a higher account limit before launch (and mind the scaling "
              "rate, 1,000 more concurrent executions per function every 10 seconds), and give login reserved "
              "concurrency so a flood of refreshes cannot starve it, nor logins the rest.",
    "connections": "**Database connections**: every warm Lambda container keeps its own connection, and a login "
                   "holds it for its whole transaction, hash included (the throttle key's lock is held across the "
                   "hash on purpose: see `functions/login`). RDS Proxy in front lends connections per transaction "
                   "(the code keeps no session state between transactions: transaction-scoped advisory locks, no "
                   "`SET`, no kept prepared statements), down to the proxy row of the table; past that, move the "
                   "hash out of the transaction.",
    "database": "**PostgreSQL's CPU and writes**, on one primary: refreshes are most of both. The first lever is the "
                "access-token lifetime: refreshes per second are active clients ÷ TOKEN_TTL_SECONDS, so doubling "
                "the TTL halves them. Past the largest instance, sessions and refresh tokens move to a store that "
                "shards by session (DynamoDB, or PostgreSQL partitioned by user behind a router), leaving users and "
                "the throttle on the primary.",
}


def verdicts(rows):
    """Which part gives out first at each load, and what to change, in the order they give out."""
    out = []
    for label, s in rows:
        lim = limits(s)
        first = max(lim, key=lim.get)
        shares = "; ".join(f"{LIMIT_NAMES[k]} {v:.0%}" for k, v in lim.items())
        state = "gives out" if lim[first] > 1 else "is the closest to its limit"
        out.append(f"- {label}: {shares}. First: {LIMIT_NAMES[first].split(' against')[0]} {state}.")
    top = limits(rows[-1][1])
    order = sorted(top, key=top.get, reverse=True)
    out += ["", "What to change, in the order the parts give out at the highest load:"]
    out += [f"{i}. {REMEDIES[k]}" for i, k in enumerate(order, 1)]
    out += ["", "Logins are CPU in Lambda, not in the database: a login's dollars are its 600,000-iteration hash "
                "(see the cost table), and the database sees three rows and a few statements."]
    return out


def section(r):
    """The Markdown section for RESULTS.md."""
    m, rows, tbl = table(r)
    inputs = "; ".join(f"{op}: Lambda CPU {v['cpu_ms']:.2f} ms, warm {v['wall_ms']:.2f} ms, PostgreSQL CPU "
                       f"{v['pg_cpu_ms']:.3f} ms" for op, v in m.items() if op != "failed login")
    lines = [
        "## Scale, on paper", "",
        "Computed by `bench/scale.py` from this run's figures per request (" + inputs + ") and from the rows and "
        "round trips counted in the SQL (`ROWS`, `ROUND_TRIPS` in the script: a login writes "
        f"{ROWS['login']} rows in {ROUND_TRIPS['login']:.0f} statements, a refresh {ROWS['refresh']} in "
        f"{ROUND_TRIPS['refresh']}, a failed login {ROWS['failed login']}, a profile read none). Lambda durations are "
        f"the measured ones stretched to the template's memory sizes (login {MEMORY_MB['login']} MB, refresh "
        f"{MEMORY_MB['refresh']} MB) plus {DB_RTT_MS} ms per statement ({PROXY_RTT_MS} ms through RDS Proxy), "
        "since the run here talks to PostgreSQL on loopback. Every login is taken as successful (a failed one costs "
        "the same hash and writes one row instead of three). PostgreSQL's CPU was measured with `fsync` off: real "
        "durability adds I/O per commit, not CPU. Prices: Lambda arm64 and approximate RDS on-demand list prices "
        "(in the script), us-east-1, no free tier.", "",
        tbl, "",
        "Which part gives out first:", *verdicts(rows), "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "bench" / "results.json"
    try:
        print(section(json.loads(src.read_text())))
    except Missing as e:
        sys.exit(f"scale.py: these figures are not in {src}: {e} (run `make bench`)")
