"""`make bench`: measures the service beside its Flask original on this machine, in one run, and
writes bench/RESULTS.md.

Run under `target/release/tempdb -- ...` (the Makefile does), which provides DATABASE_URL: one
PostgreSQL serves both services, each in its own database. Nothing here asserts a number; the
table says which targets were met. At the end it draws bench/charts/*.svg (charts.py) and computes
the scale table (scale.py) from the same figures.

`bench/.venv/bin/python bench/run.py --report` redraws the charts and rewrites RESULTS.md from
bench/results.json without measuring anything.
"""
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
import zlib
from datetime import UTC, datetime
from pathlib import Path

from pricing import lambda_cost

ROOT = Path(__file__).resolve().parent.parent
REL = ROOT / "target" / "release"
PEER = ROOT / "bench" / "flask_peer"
NODE_PEER = ROOT / "bench" / "node_peer"
NODE_WORKERS = 2  # one per core, as a cluster on this machine would be set up
PY = sys.executable
PW = "correct horse battery staple"
USERS = 50
KEY = "bench-signing-key-0123456789abcdefghijklmnopqrstuvwxyz"
CORES = os.cpu_count() or 1
ADMIN_URL = os.environ.get("DATABASE_URL", "")  # set by tempdb
WRK = dict(threads=2, connections=16, seconds=10)
LOGIN_SECONDS = 30
# Every Lambda function, from the workspace: each is a crate under functions/, in the order
# the workspace's members list them.
FUNCTIONS = tuple(sorted((p.name for p in (ROOT / "functions").iterdir() if (p / "Cargo.toml").exists()),
                         key=lambda n: (ROOT / "Cargo.toml").read_text().find(f'"functions/{n}"')))
COMMON_PASSWORDS = ROOT / "shared" / "data" / "common-passwords.txt"
# The account functions (their cold starts and the enumeration figures are one section), and
# the enumeration harness's rounds of each kind (bench/src/bin/lambda.rs, ENUMERATION_ROUNDS).
ACCOUNT_BINARIES = ("signup", "verify-email", "resend-verification", "forgot-password", "reset-password", "change-email",
                    "mailer")
ENUMERATION_ROUNDS = 200
# The second-factor functions (one section of cold starts, and /login/mfa beside /refresh).
PASSKEY_BINARIES = ("passkey-register-options", "passkey-register", "passkey-login-options", "passkey-login", "passkeys")
MFA_BINARIES = ("login-mfa", "mfa-status", "mfa-totp", "mfa-totp-verify", "mfa-totp-disable", "mfa-recovery-codes")


def log(*a):
    print("bench:", *a, file=sys.stderr, flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def db_url(name):
    base, _, query = ADMIN_URL.partition("?")
    return base.rsplit("/", 1)[0] + "/" + name + ("?" + query if query else "")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout=60.0, expect=200):
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == expect:
                    return time.perf_counter() - start
        except Exception:
            pass
        time.sleep(0.002)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def post_json(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"content-type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)


def summary(values, samples=False):
    v = sorted(values)
    def q(p):
        return v[min(len(v) - 1, round((len(v) - 1) * p))]
    out = {"median": q(0.5), "p10": q(0.1), "p90": q(0.9), "n": len(v)}
    if samples:  # for the charts' distributions
        out["samples"] = list(values)
    return out


def process_cpu_split_s(pids):
    """(user, kernel) CPU seconds the processes have used so far (/proc/PID/stat utime, stime)."""
    user = system = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            user, system = user + int(fields[11]), system + int(fields[12])
        except (FileNotFoundError, IndexError, ValueError):
            pass
    tick = os.sysconf("SC_CLK_TCK")
    return user / tick, system / tick


def process_cpu_s(pids):
    return sum(process_cpu_split_s(pids))


def peak_rss_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children(pid):
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


# ----------------------------------------------------------------------------- set-up
def setup_databases():
    import psycopg2

    conn = psycopg2.connect(ADMIN_URL.replace("?sslmode=disable", ""))
    conn.autocommit = True
    cur = conn.cursor()
    for name in ("bench_auth", "bench_flask"):
        cur.execute(f"DROP DATABASE IF EXISTS {name}")
        cur.execute(f"CREATE DATABASE {name}")
    conn.close()
    env = {**os.environ, "DATABASE_URL": db_url("bench_auth")}
    run([str(REL / "auth-admin"), "migrate"], env=env)
    log(f"creating {USERS} users in each service at 600,000 iterations")
    for i in range(USERS):
        run([str(REL / "auth-admin"), "user", "create", "--username", f"u{i}", "--email", f"u{i}@example.com",
             "--password-stdin"], env=env, input=PW + "\n")
    # The peer's own table and hashes, made by the peer's own code.
    peer_env = peer_environment()
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from app import app, db, User, hash_password\n"
        "with app.app_context():\n"
        f"    for i in range({USERS}):\n"
        "        db.session.add(User(username=f'u{i}', email=f'u{i}@example.com', password_hash=hash_password(sys.argv[2])))\n"
        "    db.session.commit()\n"
    )
    subprocess.run([PY, "-c", script, str(PEER), PW], env=peer_env, check=True)


def peer_environment():
    url = db_url("bench_flask").replace("postgres://", "postgresql+psycopg2://").replace("?sslmode=disable", "")
    return {**os.environ, "DATABASE_URL": url, "SECRET_KEY": KEY, "PBKDF2_ITERATIONS": "600000"}


# ----------------------------------------------------------------------------- hashing, JWT
def openssl_floor_ms():
    out = run(["openssl", "speed", "-evp", "sha256", "-bytes", "16384", "-seconds", "3"]).stdout
    kb_per_s = float(out.strip().splitlines()[-1].split()[-1].rstrip("k"))
    return 1_200_000 * 64 / (kb_per_s * 1000) * 1000


# The criterion groups each bench defines (benches/*.rs), by the start of their names.
CRITERION_GROUPS = {"kdf": ("pbkdf2",), "jwt": ("jwt", "rs256")}


def criterion(bench):
    """Medians of a criterion bench: kdf keyed by function ("auth-shared kdf (ours)"), jwt by
    group and function ("jwt hs256/sign", "jwt rs256/verify", "rs256 key load")."""
    groups = CRITERION_GROUPS[bench]
    for group in groups:
        for old in (ROOT / "target" / "criterion").glob(f"{group}*"):
            shutil.rmtree(old)  # only this run's figures
    run(["cargo", "bench", "-p", "auth-bench", "--bench", bench, "--", "--noplot", "--warm-up-time", "1",
         "--measurement-time", "5"], cwd=ROOT)
    results = {}
    for est in (ROOT / "target" / "criterion").rglob("new/estimates.json"):
        info = json.loads((est.parent / "benchmark.json").read_text())
        if not info["group_id"].startswith(groups):
            continue
        e = json.loads(est.read_text())
        if bench == "kdf":
            name = info["function_id"]
        else:
            name = "/".join(x for x in (info["group_id"], info.get("function_id")) if x)
        results[name] = {"median_ms": e["median"]["point_estimate"] / 1e6,
                         "mad_ms": e["median_abs_dev"]["point_estimate"] / 1e6}
    return results


def hashlib_ms():
    times = []
    import hashlib
    for _ in range(7):
        t = time.perf_counter()
        hashlib.pbkdf2_hmac("sha256", PW.encode(), b"0123456789abcdef", 600_000)
        times.append((time.perf_counter() - t) * 1000)
    return summary(times)


# ----------------------------------------------------------------------------- HTTP
LUA_LOGIN = """
local i = 0
local password = "__PW__"
request = function()
  i = i + 1
  local body = string.format('{"username":"u%d","password":"%s"}', i % __USERS__, password)
  return wrk.format("POST", "/login", {["content-type"] = "application/json"}, body)
end
"""


# POST /refresh, chained. wrk runs one Lua state per thread and tells response() nothing about
# the connection, so the chain is per thread: each thread starts with the refresh tokens of its
# own logins (one per connection, plus one that wrk's start-up check of request() on the first
# thread takes), request() takes the oldest, response() puts back the one it hands out. A
# connection has one request in flight and wrk calls response() before that connection's next
# request(), so every token is presented exactly once and the queue never runs dry unless a
# refresh fails (then `starved` counts requests sent with no token, which are refused).
LUA_REFRESH = """
local threads, all, counter = {}, {}, 0
for line in io.lines("__TOKENS__") do all[#all + 1] = line end
function setup(thread)
  local mine = {}
  for k = 1, __PER_THREAD__ do mine[k] = all[counter * __PER_THREAD__ + k] end
  thread:set("seed", table.concat(mine, " "))
  counter = counter + 1
  threads[#threads + 1] = thread
end
queue, head, tail = {}, 1, 0
starved, refused, rotated = 0, 0, 0
function init(args)
  for tok in string.gmatch(seed, "%S+") do tail = tail + 1; queue[tail] = tok end
end
request = function()
  local tok = "starved"
  if head <= tail then tok = queue[head]; queue[head] = nil; head = head + 1
  else starved = starved + 1 end
  return wrk.format("POST", "/refresh", {["content-type"] = "application/json"},
                    '{"refresh_token":"' .. tok .. '"}')
end
response = function(status, headers, body)
  local tok = status == 200 and string.match(body, '"refresh_token"%s*:%s*"([%w_-]+)"')
  if tok then rotated = rotated + 1; tail = tail + 1; queue[tail] = tok else refused = refused + 1 end
end
function done(summary, latency, requests)
  local s, r, n = 0, 0, 0
  for _, t in ipairs(threads) do s = s + t:get("starved"); r = r + t:get("refused"); n = n + t:get("rotated") end
  io.write(string.format("bench-lua: starved=%d refused=%d rotated=%d\\n", s, r, n))
end
"""

# POST /logout {"refresh_token": ...}: every request ends a different live session. The sessions
# are made before the run (seed_logout_sessions); thread n takes the tokens of its own range, and
# counts in `wrapped` the requests that had to start the range over (sessions already ended,
# still 204).
LUA_LOGOUT = """
local threads, counter = {}, 0
function setup(thread)
  thread:set("first", __START__ + counter * __PER_THREAD__)
  counter = counter + 1
  threads[#threads + 1] = thread
end
first, i, wrapped = 0, 0, 0
request = function()
  if i >= __PER_THREAD__ then wrapped = wrapped + 1 end
  local s = tostring(first + i % __PER_THREAD__)
  i = i + 1
  return wrk.format("POST", "/logout", {["content-type"] = "application/json"},
                    '{"refresh_token":"lo' .. string.rep("0", 41 - #s) .. s .. '"}')
end
function done(summary, latency, requests)
  local w = 0
  for _, t in ipairs(threads) do w = w + t:get("wrapped") end
  io.write(string.format("bench-lua: wrapped=%d\\n", w))
end
"""


def wrk(url, token=None, login=False, lua=None, connections=None, seconds=None):
    c = connections or WRK["connections"]
    d = seconds or WRK["seconds"]
    cmd = ["wrk", "-t", str(min(WRK["threads"], c)), "-c", str(c), "-d", f"{d}s", "--latency"]
    if token:
        cmd += ["-H", f"Authorization: Bearer {token}"]
    if login:
        lua = LUA_LOGIN.replace("__USERS__", str(USERS)).replace("__PW__", PW)
        # wrk leaves requests slower than its timeout (2 s by default) out of the latency
        # figures; a loaded machine's logins can take that long.
        cmd += ["--timeout", "10s"]
    script = None
    if lua:
        script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
        script.write(lua)
        script.close()
        cmd += ["-s", script.name]
    out = run(cmd + [url]).stdout
    if script:
        os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    if "error" in out.lower() and "Socket errors" not in out:
        raise RuntimeError(f"wrk: {out}")
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)

    def pct(p):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)", out, re.M)
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v

    timeouts = re.search(r"Socket errors:.*timeout (\d+)", out)
    counters = re.search(r"^bench-lua: (.*)$", out, re.M)
    counters = {k: int(v) for k, v in (kv.split("=") for kv in counters.group(1).split())} if counters else {}
    return {"rps": rps, "requests": total, "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "p50_ms": pct(50), "p90_ms": pct(90), "p99_ms": pct(99), "timeouts": int(timeouts.group(1)) if timeouts else 0,
            **counters}


def start_ours(port, log_level="warn"):
    """auth-local on `port`. The peers write no line per request (gunicorn at --log-level warning
    with no access log, the Node.js peer nothing), so ours runs at `warn` too for the comparison;
    `info` (its default, one line per request) is measured beside it as that line's cost."""
    env = {"PATH": os.environ["PATH"], "DATABASE_URL": db_url("bench_auth"), "SECRET_KEY": KEY,
           "RUST_LOG": log_level}
    p = subprocess.Popen([str(REL / "auth-local"), "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    wait_http(f"http://127.0.0.1:{port}/health")
    return p


def start_peer(port, workers):
    p = subprocess.Popen([str(Path(PY).parent / "gunicorn"), "-w", str(workers), "-b", f"127.0.0.1:{port}",
                          "--chdir", str(PEER), "--log-level", "warning", "app:app"], env=peer_environment(),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_http(f"http://127.0.0.1:{port}/health")
    return p


def start_node(port):
    """The Node.js peer (bench/node_peer): express under Node's cluster, NODE_WORKERS processes,
    on the Flask peer's database (the same users table and hashes)."""
    url = db_url("bench_flask").replace("?sslmode=disable", "")
    env = {"PATH": os.environ["PATH"], "DATABASE_URL": url, "SECRET_KEY": KEY, "PBKDF2_ITERATIONS": "600000",
           "PORT": str(port), "WORKERS": str(NODE_WORKERS), "NODE_ENV": "production"}
    p = subprocess.Popen(["node", str(NODE_PEER / "server.js")], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    wait_http(f"http://127.0.0.1:{port}/health")
    return p


def get_json(url, token=None):
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.status, json.loads(resp.read())


def check_answers(name, base):
    """What each service answers before its speed counts: /health 200 and healthy, a login of u0
    200 with a token, and /profile with that token 200 naming u0 (Flask and Node.js say
    `token`, ours `access_token`). Returns the token."""
    status, health = get_json(base + "/health")
    if status != 200 or health.get("status") not in ("healthy", "ok"):
        raise RuntimeError(f"{name} /health: {status} {health}")
    login = post_json(base + "/login", {"username": "u0", "password": PW})
    token = login.get("access_token") or login.get("token")
    if not token or token.count(".") != 2:
        raise RuntimeError(f"{name} /login: no token in {login}")
    status, profile = get_json(base + "/profile", token)
    if status != 200 or profile.get("username") != "u0" or profile.get("email") != "u0@example.com":
        raise RuntimeError(f"{name} /profile: {status} {profile}")
    log(f"{name}: /health, /login and /profile answer as they should")
    return token


def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()


def auth_db():
    import psycopg2

    conn = psycopg2.connect(db_url("bench_auth").replace("?sslmode=disable", ""))
    conn.autocommit = True
    return conn


def postgres_pids():
    """This run's PostgreSQL: the postmaster (its pid heads postmaster.pid) and its children
    (the backends, writers, autovacuum), not other clusters on the machine."""
    conn = auth_db()
    try:
        cur = conn.cursor()
        cur.execute("SHOW data_directory")
        postmaster = int((Path(cur.fetchone()[0]) / "postmaster.pid").read_text().split()[0])
    finally:
        conn.close()
    return [postmaster] + children(postmaster)


def postgres_cpu_s():
    """CPU seconds this run's PostgreSQL has used so far: its live processes' own time plus what
    its exited children used (the postmaster's cutime and cstime, /proc/PID/stat fields 16 and
    17). A backend that ends mid-run (a peer's pool closing an idle connection) still counts, and
    one that starts mid-run counts from its start: a fixed list of pids read before a run lost
    the first and missed the second, which made PostgreSQL's CPU per request come out negative."""
    pids = postgres_pids()
    fields = Path(f"/proc/{pids[0]}/stat").read_text().rsplit(")", 1)[1].split()
    reaped = (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")
    return process_cpu_s(pids) + reaped


def db_count(sql):
    conn = auth_db()
    try:
        cur = conn.cursor()
        cur.execute(sql)
        return cur.fetchone()[0]
    finally:
        conn.close()


# What the database says the session runs did: refresh tokens consumed (one per rotation) and
# sessions ended by a logout.
ROTATIONS_SQL = "SELECT count(*) FROM refresh_tokens WHERE consumed_at IS NOT NULL"
LOGOUTS_SQL = "SELECT count(*) FROM sessions WHERE end_reason = 'logout'"
# Sessions made for the /logout runs, per second of run (more than auth-local ends here).
LOGOUT_SESSIONS_PER_S = 20_000


def refresh_lua(base, per_thread, threads):
    """The chained /refresh script, its tokens from fresh logins (one per connection + one per
    thread), and the file holding them (the caller removes it)."""
    tokens = []
    for i in range(per_thread * threads):
        tokens.append(post_json(base + "/login", {"username": f"u{i % USERS}", "password": PW})["refresh_token"])
    f = tempfile.NamedTemporaryFile("w", suffix=".tokens", delete=False)
    f.write("\n".join(tokens) + "\n")
    f.close()
    return LUA_REFRESH.replace("__TOKENS__", f.name).replace("__PER_THREAD__", str(per_thread)), f.name


def seed_logout_sessions(start, count):
    """Live sessions with refresh tokens 'lo' + the index in 41 digits, spread over the bench
    accounts: the rows a login writes (a session and its first refresh token's SHA-256)."""
    conn = auth_db()
    try:
        cur = conn.cursor()
        cur.execute(f"""
            WITH u AS (SELECT array_agg(id ORDER BY username) AS ids FROM users),
            seed AS MATERIALIZED (SELECT g, gen_random_uuid() AS sid FROM generate_series({start}, {start + count - 1}) g),
            s AS (INSERT INTO sessions (id, user_id, expires_at)
                  SELECT sid, u.ids[1 + g % array_length(u.ids, 1)], now() + interval '30 days' FROM seed, u)
            INSERT INTO refresh_tokens (token_hash, session_id)
            SELECT sha256(convert_to('lo' || lpad(g::text, 41, '0'), 'UTF8')), sid FROM seed""")
        cur.execute("VACUUM ANALYZE sessions")
        cur.execute("VACUUM ANALYZE refresh_tokens")
    finally:
        conn.close()


def session_run(base, endpoint, pids, seconds):
    """One wrk run of /refresh or /logout as described at LUA_REFRESH and LUA_LOGOUT, with the
    database's own count of what it did."""
    threads = min(WRK["threads"], WRK["connections"])
    tokens_file = None
    if endpoint == "/refresh":
        lua, tokens_file = refresh_lua(base, WRK["connections"] // threads + 1, threads)
        check = ROTATIONS_SQL
    else:
        per_thread = LOGOUT_SESSIONS_PER_S * seconds // threads
        start = session_run.next_logout
        session_run.next_logout += per_thread * threads
        log(f"making {per_thread * threads} sessions for /logout")
        seed_logout_sessions(start, per_thread * threads)
        lua = LUA_LOGOUT.replace("__START__", str(start)).replace("__PER_THREAD__", str(per_thread))
        check = LOGOUTS_SQL
    before = db_count(check)
    r = counted(lambda: wrk(base + endpoint, lua=lua, seconds=seconds), pids)
    r["db_done"] = db_count(check) - before
    if tokens_file:
        os.unlink(tokens_file)
    return r


session_run.next_logout = 0


# The reads are measured in rounds, every service once per round, and each service's median round
# is reported: on a shared host the speed drifts by a fifth from one minute to the next.
READ_ROUNDS = 3


def measured_wrk(base, endpoint, pids, **kw):
    """One endpoint of one service under wrk after a 2 s warm-up, with the CPU per request of the
    service (user and kernel) and of PostgreSQL."""
    wrk(base + endpoint, seconds=2, **kw)  # warm-up
    cpu0, pg0 = process_cpu_split_s(pids), postgres_cpu_s()
    # Logins take hundreds of ms under this load; a longer run keeps the requests still in flight
    # when wrk stops (and so not counted) a small share.
    r = wrk(base + endpoint, seconds=LOGIN_SECONDS if endpoint == "/login" else None, **kw)
    n, cpu1, pg1 = max(1, r["requests"]), process_cpu_split_s(pids), postgres_cpu_s()
    r["user_ms_per_request"] = (cpu1[0] - cpu0[0]) * 1000 / n
    r["kernel_ms_per_request"] = (cpu1[1] - cpu0[1]) * 1000 / n
    r["cpu_ms_per_request"] = (sum(cpu1) - sum(cpu0)) * 1000 / n
    r["pg_cpu_ms_per_request"] = (pg1 - pg0) * 1000 / n
    r["load_avg_1m"] = os.getloadavg()[0]
    return r


def http_runs():
    """ours (at warn, and at info for the reads), the Flask peer and the Node.js peer, all started
    and checked first, then measured endpoint by endpoint, one service after another: a machine
    whose speed drifts (a shared host) moves all of one endpoint's figures together, not one
    service's."""
    workers = 2 * CORES + 1  # gunicorn's recommendation for sync workers
    starters = (("rust", start_ours), ("rust_info", lambda port: start_ours(port, "info")),
                ("flask", lambda port: start_peer(port, workers)), ("node", start_node))
    services = {}
    try:
        for name, starter in starters:
            port = free_port()
            p = starter(port)
            base = f"http://127.0.0.1:{port}"
            services[name] = {"process": p, "base": base, "token": check_answers(name, base),
                              "pids": [p.pid] + children(p.pid)}
        results = {name: {} for name in services}
        for endpoint in ("/health", "/profile"):
            rounds = {name: [] for name in services}
            for _ in range(READ_ROUNDS):
                for name, sv in services.items():
                    kw = {"token": sv["token"]} if endpoint == "/profile" else {}
                    rounds[name].append(measured_wrk(sv["base"], endpoint, sv["pids"], **kw))
                    log(name, endpoint, rounds[name][-1])
            for name, runs in rounds.items():
                median = sorted(runs, key=ok_rps)[len(runs) // 2]
                results[name][endpoint] = {**median, "rounds_rps": [ok_rps(x) for x in runs]}
        # Only ours has sessions: /refresh and /logout, each beside a /profile of the same process
        # measured just before them.
        ours = services["rust"]
        results["rust"]["/profile (beside sessions)"] = measured_wrk(ours["base"], "/profile", ours["pids"],
                                                                   token=ours["token"])
        for endpoint in ("/refresh", "/logout"):
            session_run(ours["base"], endpoint, ours["pids"], 2)  # warm-up, with its own tokens
            r = session_run(ours["base"], endpoint, ours["pids"], WRK["seconds"])
            r["load_avg_1m"] = os.getloadavg()[0]
            results["rust"][endpoint] = r
            log("rust", endpoint, r)
        for name in ("rust", "flask", "node"):
            sv = services[name]
            before = kdf_now_ms() if name == "rust" else None
            results[name]["/login"] = measured_wrk(sv["base"], "/login", sv["pids"], login=True)
            if before is not None:  # the one hash its logins/s are held to, timed beside them
                results["hash_ms_beside_login"] = statistics.mean([before, kdf_now_ms()])
            log(name, "/login", results[name]["/login"])
        # Single-request wall time, one connection at a time, between two measures of the
        # SHA-256 floor (a shared host's speed drifts: the target compares figures taken together).
        floors = [openssl_floor_ms()]
        for name in ("rust", "flask", "node"):
            sv = services[name]
            for endpoint, kw in (("/profile", {"token": sv["token"]}), ("/login", {"login": True})):
                results[name][endpoint]["serial_p50_ms"] = wrk(sv["base"] + endpoint, connections=1, seconds=5,
                                                               **kw)["p50_ms"]
        floors.append(openssl_floor_ms())
        results["floor_ms_beside_serial"] = statistics.mean(floors)
        for name, sv in services.items():
            results[name]["peak_rss_mib"] = max(peak_rss_mib(pid) for pid in sv["pids"] if Path(f"/proc/{pid}").exists())
            results[name]["processes"] = len(sv["pids"])
    finally:
        for sv in services.values():
            stop(sv["process"])
    results["peer_workers"] = workers
    results["node_workers"] = NODE_WORKERS
    return results


# ----------------------------------------------------------------------------- durable commits
DURABILITY = ("fsync", "synchronous_commit", "full_page_writes")
PASSWORD_CHANGES = 40
PW2 = "a second passphrase, long enough"


def set_durability(on):
    """Turns fsync, synchronous_commit and full_page_writes on or off in this run's PostgreSQL
    (ALTER SYSTEM and a reload: all three take effect without a restart) and says what it has."""
    import psycopg2

    conn = psycopg2.connect(ADMIN_URL.replace("?sslmode=disable", ""))
    conn.autocommit = True
    try:
        cur = conn.cursor()
        for k in DURABILITY:
            cur.execute(f"ALTER SYSTEM SET {k} = {'on' if on else 'off'}")
        # The time each WAL flush takes, in pg_stat_wal (a clock read per flush).
        cur.execute("ALTER SYSTEM SET track_wal_io_timing = on")
        cur.execute("SELECT pg_reload_conf()")
        time.sleep(1)
        cur.execute("CHECKPOINT")
        now = {}
        for k in DURABILITY:
            cur.execute(f"SHOW {k}")
            now[k] = cur.fetchone()[0]
        cur.execute("SHOW data_directory")
        data = cur.fetchone()[0]
    finally:
        conn.close()
    if any(v != ("on" if on else "off") for v in now.values()):
        raise RuntimeError(f"PostgreSQL did not take the settings: {now}")
    device = run(["df", "--output=source,fstype", data]).stdout.split("\n")[1].split()
    return {**now, "wal_on": f"{device[0]} ({device[1]})"}


def pg_counters():
    """Commits in the bench database and WAL writes and flushes of the whole cluster so far."""
    conn = auth_db()
    try:
        cur = conn.cursor()
        cur.execute("SELECT pg_stat_clear_snapshot()")
        cur.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = 'bench_auth'")
        commits = cur.fetchone()[0]
        cur.execute("SELECT wal_sync, wal_write, wal_bytes, wal_sync_time FROM pg_stat_wal")
        sync, write, wal_bytes, sync_ms = cur.fetchone()
    finally:
        conn.close()
    return {"commits": commits, "wal_syncs": sync, "wal_writes": write, "wal_bytes": int(wal_bytes),
            "wal_sync_ms": float(sync_ms)}


# A backend that goes idle flushes its pending statistics (commits, WAL) only after
# PGSTAT_IDLE_INTERVAL, 10 s in PostgreSQL 15 (src/backend/utils/activity/pgstat.c): the counters
# are read once every backend's figures from before (and then from during) a run have landed.
STATS_SETTLE_S = 11


def counted(fn, pids, requests_of=lambda r: r["requests"]):
    """Runs fn() and adds to its result the CPU of the service and of PostgreSQL, the commits and
    WAL flushes per request, and the commits per second, from counters read around it."""
    time.sleep(STATS_SETTLE_S)
    c0, cpu0, pg0, t0 = pg_counters(), process_cpu_s(pids), postgres_cpu_s(), time.time()
    r = fn()
    cpu1, pg1, t1 = process_cpu_s(pids), postgres_cpu_s(), time.time()
    time.sleep(STATS_SETTLE_S)
    c1 = pg_counters()
    n = max(1, requests_of(r))
    r["cpu_ms_per_request"] = (cpu1 - cpu0) * 1000 / n
    r["pg_cpu_ms_per_request"] = (pg1 - pg0) * 1000 / n
    for k in ("commits", "wal_syncs", "wal_writes", "wal_bytes"):
        r[f"{k}_per_request"] = (c1[k] - c0[k]) / n
    r["commits_per_s"] = (c1["commits"] - c0["commits"]) / max(1e-9, t1 - t0)
    syncs = c1["wal_syncs"] - c0["wal_syncs"]
    r["ms_per_wal_sync"] = (c1["wal_sync_ms"] - c0["wal_sync_ms"]) / syncs if syncs else 0.0
    return r


def kdf_now_ms():
    """One 600,000-iteration hash of ours, now (`kdf --json`, the median of 5): the two hashes a
    password change makes are compared with hashes timed beside it, not minutes earlier."""
    return json.loads(run([str(REL / "kdf"), "--json", "--rounds", "5"]).stdout)["ours_ms"]


def password_changes(base, n=PASSWORD_CHANGES):
    """n /password changes one after another, as a user makes them, alternating between two
    passwords, each with the access token the previous change answered; every answer must be a
    200 with a new token, and the token must work at once (a /profile right after it)."""
    login = post_json(base + "/login", {"username": "u1", "password": PW})
    token, current, times = login["access_token"], PW, []
    for i in range(n):
        new = PW2 if current == PW else PW
        req = urllib.request.Request(base + "/password", method="POST", data=json.dumps(
            {"current_password": current, "new_password": new}).encode(),
            headers={"content-type": "application/json", "Authorization": f"Bearer {token}"})
        t = time.perf_counter()
        with urllib.request.urlopen(req, timeout=30) as resp:
            doc = json.loads(resp.read())
            status = resp.status
        times.append((time.perf_counter() - t) * 1000)
        if status != 200 or not doc.get("access_token"):
            raise RuntimeError(f"/password change {i}: {status} {doc}")
        token, current = doc["access_token"], new
        if get_json(base + "/profile", token)[0] != 200:
            raise RuntimeError(f"/password change {i}: its token does not work at once")
    if current != PW:  # leave u1 as it was
        raise RuntimeError("an even number of changes leaves the password as it was")
    return {"requests": n, **summary(times, samples=False)}


def write_paths():
    """The write paths (login, refresh, logout, password) with PostgreSQL as tempdb starts it
    (fsync, synchronous_commit and full_page_writes off), then once more with all three on, WAL
    on this machine's disk: one auth-local each, the same loads as the HTTP runs."""
    out = {}
    for mode in ("fast", "durable"):
        settings = set_durability(mode == "durable")
        port = free_port()
        p = start_ours(port)
        base = f"http://127.0.0.1:{port}"
        check_answers(f"ours ({mode})", base)
        pids = [p.pid] + children(p.pid)
        r = {"settings": settings}
        wrk(base + "/login", seconds=2, login=True)
        r["/login"] = counted(lambda base=base: wrk(base + "/login", seconds=20, login=True), pids,
                              lambda x: x["requests"] - x["non_2xx"])
        for ep in ("/refresh", "/logout"):
            session_run(base, ep, pids, 2)
            r[ep] = session_run(base, ep, pids, WRK["seconds"])
        r["hash_ms_beside"] = kdf_now_ms()
        r["/password"] = counted(lambda base=base: password_changes(base), pids)
        r["hash_ms_beside"] = statistics.mean([r["hash_ms_beside"], kdf_now_ms()])
        for ep in ("/login", "/refresh", "/logout", "/password"):
            log(mode, ep, {k: v for k, v in r[ep].items() if not isinstance(v, list)})
        stop(p)
        out[mode] = r
    set_durability(False)
    return out


# ----------------------------------------------------------------------------- cold starts, sizes
def enumeration_table():
    return run([str(REL / "enumeration"), "40"]).stdout


def lambda_runs():
    out = run([str(REL / "lambda"), str(REL), "25"], env={**os.environ, "MOTO_SERVER": str(ROOT / ".venv/bin/moto_server")})
    return json.loads(out.stdout)


def peer_cold_starts(n=20):
    times = []
    for _ in range(n):
        port = free_port()
        t = time.perf_counter()
        p = subprocess.Popen([str(Path(PY).parent / "gunicorn"), "-w", "1", "-b", f"127.0.0.1:{port}", "--chdir",
                              str(PEER), "--log-level", "warning", "app:app"], env=peer_environment(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_http(f"http://127.0.0.1:{port}/health")
        times.append((time.perf_counter() - t) * 1000)
        stop(p)
    return summary(times, samples=True)


def zip_sizes():
    env = {**os.environ, "PATH": f"{ROOT / '.venv/bin'}:{os.environ['PATH']}"}
    # `--bin`, not `-p`, as `sam build` runs it (template.yaml's BuildProperties: Binary): the
    # same features resolved, so these are the bootstraps it deploys, and the sam build test
    # (e2e/tests/e2e/template.rs) and this share one build.
    cmd = ["cargo", "lambda", "build", "--release", "--arm64", "--output-format", "zip"]
    for f in FUNCTIONS:
        cmd += ["--bin", f]
    run(cmd, cwd=ROOT, env=env)
    sizes = {f: (ROOT / "target" / "lambda" / f / "bootstrap.zip").stat().st_size for f in FUNCTIONS}
    # The peer as a Lambda zip would need at least its code and its dependencies: the
    # distributions its requirements name and what they require, not the rest of bench/.venv
    # (gunicorn, which Lambda replaces, and the charts' matplotlib).
    tmp = Path(tempfile.mkdtemp()) / "peer.zip"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(PEER / "app.py", "app.py")
        for dist in peer_distributions():
            for f in dist.files or ():
                path = Path(dist.locate_file(f))
                if path.is_file() and "__pycache__" not in f.parts and ".." not in f.parts:
                    z.write(path, str(f))
    sizes["flask peer (code + dependencies)"] = tmp.stat().st_size
    shutil.rmtree(tmp.parent)
    return sizes


def peer_distributions():
    """The installed distributions the peer's requirements.txt names (without gunicorn), and
    everything they require, transitively (extras and other platforms' markers left out)."""
    from importlib import metadata

    from packaging.requirements import Requirement

    wanted = [Requirement(line.split("#")[0].strip()).name for line in (PEER / "requirements.txt").read_text().splitlines()
              if line.split("#")[0].strip()]
    seen, out = set(), []
    while wanted:
        name = wanted.pop().lower().replace("_", "-")
        if name in seen or name == "gunicorn":
            continue
        seen.add(name)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        out.append(dist)
        for req in map(Requirement, dist.requires or ()):
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                wanted.append(req.name)
    return out


# ----------------------------------------------------------------------------- report
def ok_rps(r):
    """Requests per second that got a 2xx."""
    return r["rps"] * (1 - r["non_2xx"] / max(1, r["requests"]))


def paired_ratio(ours, theirs):
    """ours ÷ theirs in successful requests per second: the median of the rounds' ratios when both
    were measured in rounds (each round's two figures were taken a minute apart at most, so a
    drifting host moves both), else the ratio of the two figures. Returns (ratio, per-round)."""
    a, b = ours.get("rounds_rps"), theirs.get("rounds_rps")
    if a and b and len(a) == len(b):
        each = [x / max(y, 1e-9) for x, y in zip(a, b, strict=True)]
        return statistics.median(each), each
    return ok_rps(ours) / max(ok_rps(theirs), 1e-9), []


def mark(ok):
    return "met" if ok else "**not met**"


def main():
    started = time.time()
    machine = {
        "cpu": next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), platform.processor()),
        "cores": CORES,
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
        "kernel": platform.release(),
        "rustc": run(["rustc", "--version"]).stdout.strip(),
        "python": platform.python_version(),
        "postgres": run([str(Path(shutil.which("postgres") or "postgres")), "--version"]).stdout.strip(),
        "commit": run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT).stdout.strip(),
        "dirty": bool(run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT).stdout.strip()),
        "load_avg_start": os.getloadavg()[0],
    }
    results = {"machine": machine, "load_avg_1m": {}}
    out = ROOT / "bench" / "results.json"

    def stage(key, fn):
        results[key] = fn()
        results["load_avg_1m"][key] = os.getloadavg()[0]
        out.write_text(json.dumps(results, indent=2))  # what a run that fails later got so far

    # First the arm64 builds: minutes of compiling that measure nothing, done before anything
    # that is timed.
    log("sizes")
    stage("zip_bytes", zip_sizes)
    common = COMMON_PASSWORDS.read_bytes()
    squeeze = zlib.compressobj(6, zlib.DEFLATED, -15)
    results["common_passwords"] = {"bytes": len(common), "entries": sum(1 for line in common.splitlines() if line.strip()),
                                   "deflated_bytes": len(squeeze.compress(common) + squeeze.flush())}
    setup_databases()
    log("hashing")
    stage("floor_ms", lambda: statistics.median(openssl_floor_ms() for _ in range(3)))
    stage("kdf", lambda: criterion("kdf"))
    stage("hashlib", hashlib_ms)
    log("jwt")
    stage("jwt", lambda: criterion("jwt"))
    log("failed-login timing")
    stage("enumeration", enumeration_table)
    log("http")
    stage("http", http_runs)
    log("write paths, fast and durable commits")
    stage("write_paths", write_paths)
    log("lambda cold starts")
    stage("lambda", lambda_runs)
    stage("peer_cold_start_ms", peer_cold_starts)
    results["seconds"] = time.time() - started
    out.write_text(json.dumps(results, indent=2))
    report(results)


def report(results):
    """Charts, then RESULTS.md, from a run's results."""
    log("charts")
    try:
        import charts

        drawn = charts.draw(results)
    except Exception as e:  # a chart must not cost the run its report
        log(f"charts not drawn: {e!r}")
        drawn = []
    write_report(results, results.get("seconds", 0), drawn)


STAGES = {"zip_bytes": "arm64 builds", "floor_ms": "openssl", "kdf": "PBKDF2", "hashlib": "hashlib", "jwt": "JWT",
          "enumeration": "failed logins", "http": "HTTP", "write_paths": "write paths", "lambda": "cold starts", "peer_cold_start_ms": "gunicorn starts"}


def chart(drawn, name):
    """The Markdown image of chart `name` (bench/charts/NAME.svg), if it was drawn."""
    return [f"![{title}](charts/{path.name})" for n, title, path in drawn if n == name] + [""]


def jwt_rows(jwt):
    """The JWT table: HS256 and RS256 side by side, from criterion's "group/function" keys."""
    def cell(key):
        v = jwt.get(key)
        return f"{v['median_ms'] * 1000:.2f} ± {v['mad_ms'] * 1000:.2f} µs" if v else "–"

    rows = ["| | HS256 (HMAC, RustCrypto) | RS256 (2048-bit RSA, ring) | RS256 ÷ HS256 |", "| --- | --- | --- | --- |"]
    for op in ("sign", "verify"):
        hs, rs = jwt.get(f"jwt hs256/{op}", jwt.get(op)), jwt.get(f"jwt rs256/{op}")
        ratio = f"{rs['median_ms'] / hs['median_ms']:.0f}×" if hs and rs else "–"
        rows.append(f"| {op} one access token | {cell(f'jwt hs256/{op}') if f'jwt hs256/{op}' in jwt else cell(op)} | "
                    f"{cell(f'jwt rs256/{op}')} | {ratio} |")
    if "rs256 key load" in jwt:
        rows.append(f"| load the key (once per key version, at cold start) | – | {cell('rs256 key load')} | – |")
    return rows


def targets_at_a_glance(r):
    """The targets of sessions and RS256, one row each, from the sections below."""
    rows = ["| target | measured | |", "| --- | --- | --- |"]
    hp = r.get("http", {})
    rust = hp.get("rust", {})
    for ep in ("/health", "/profile"):
        for peer, times, label in (("flask", 10, "Flask"), ("node", 3, "Node.js")):
            if ep in rust and ep in hp.get(peer, {}):
                (x, each), them = paired_ratio(rust[ep], hp[peer][ep]), hp[peer][ep]
                ok = x >= times and rust[ep]["p99_ms"] < them["p99_ms"]
                rounds = f" (rounds {', '.join(f'{v:.1f}' for v in each)})" if each else ""
                rows.append(f"| {ep} at least {times}× the {label} peer's successful requests/s, p99 below it | "
                            f"{x:.1f}×{rounds}, p99 {rust[ep]['p99_ms']:.2f} against {them['p99_ms']:.2f} ms | {mark(ok)} |")
    if "/login" in rust and "floor_ms" in r and "kdf" in r:
        one, floor = rust["/login"].get("serial_p50_ms", float("nan")), hp.get("floor_ms_beside_serial", r["floor_ms"])
        rows.append(f"| one login over HTTP at most 1.10× the SHA-256 floor | {one:.1f} ms = {one / floor:.2f}× {floor:.1f} ms | "
                    f"{mark(one <= 1.10 * floor)} |")
        hash_ms = hp.get("hash_ms_beside_login", r["kdf"]["auth-shared kdf (ours)"]["median_ms"])
        need = 0.95 * CORES / (hash_ms / 1000)
        rows.append(f"| logins/s at least 0.95 × cores ÷ one hash ({need:.1f}) | {ok_rps(rust['/login']):.1f} | "
                    f"{mark(ok_rps(rust['/login']) >= need)} |")
        if "write_paths" in r:
            wp, each = r["write_paths"], []
            for m in ("fast", "durable"):
                limit = 2 * wp[m].get("hash_ms_beside", r["kdf"]["auth-shared kdf (ours)"]["median_ms"]) + 25
                each.append((m, wp[m]["/password"]["median"], limit))
            rows.append("| /password p50 at most two hashes (timed beside it) + 25 ms, fast and durable | "
                        + "; ".join(f"{m} {v:.1f} ms against {lim:.1f}" for m, v, lim in each)
                        + f" | {mark(all(v <= lim for _, v, lim in each))} |")
    if "/refresh" in rust and "/profile" in rust:
        ratio = ok_rps(rust["/refresh"]) / ok_rps(rust.get("/profile (beside sessions)", rust["/profile"]))
        rows.append(f"| /refresh at least half of /profile's successful requests per second (a refresh is one round trip) | {ratio:.2f}× | {mark(ratio >= 0.5)} |")
    by = {f["function"]: f for f in r.get("lambda", {}).get("functions", [])}
    for label, why in (("refresh (rotation)", "sessions"), ("logout (bearer, local scope)", "sessions"),
                       ("password (locked account: no hash)", "sessions, before any hash"),
                       ("jwks RS256", "public keys"), ("login RS256 (throttled: no hash)", "public keys, RSA key, before any hash")):
        if label in by:
            med = by[label]["first_response_ms"]["median"]
            rows.append(f"| {label.split(' ')[0]} cold start under 25 ms median ({why}) | {med:.1f} ms | {mark(med < 25)} |")
    for f in r.get("lambda", {}).get("functions", []):
        if f.get("binary") in ACCOUNT_BINARIES:
            med = f["first_response_ms"]["median"]
            rows.append(f"| {f['binary']} cold start under 25 ms median (accounts, before any hash) | {med:.1f} ms | {mark(med < 25)} |")
        if f.get("binary") in MFA_BINARIES:
            med = f["first_response_ms"]["median"]
            rows.append(f"| {f['binary']} cold start under 25 ms median (second factors, before any hash) | {med:.1f} ms | {mark(med < 25)} |")
        if f.get("binary") in PASSKEY_BINARIES:
            med = f["first_response_ms"]["median"]
            rows.append(f"| {f['binary']} cold start under 25 ms median (passkeys) | {med:.1f} ms | {mark(med < 25)} |")
    if "login-mfa (a real second step)" in by and "refresh (rotation)" in by:
        mfa, ref = by["login-mfa (a real second step)"]["warm_ms"]["median"], by["refresh (rotation)"]["warm_ms"]["median"]
        rows.append(f"| /login/mfa warm p50 beside /refresh's (no hash; seven round trips against three, see Cold start) | "
                    f"{mfa:.2f} ms against {ref:.2f} ms ({mfa / ref:.2f}×) | reported |")
    for route, e in r.get("lambda", {}).get("enumeration", {}).items():
        rows.append(f"| {route}: {e['kinds'][0]} ÷ {e['kinds'][1]} within 0.9–1.1 (accounts) | {e['ratio']:.3f} | {mark(0.9 <= e['ratio'] <= 1.1)} |")
    for name in ("refresh", "logout", "password", "jwks", "rotate-key", *ACCOUNT_BINARIES, *MFA_BINARIES,
                 *PASSKEY_BINARIES):
        if name in r.get("zip_bytes", {}):
            size = r["zip_bytes"][name]
            rows.append(f"| {name} arm64 zip under 3 MB | {size / 1e6:.2f} MB | {mark(size < 3e6)} |")
    return rows if len(rows) > 2 else []


def where_the_time_goes(r):
    """/health and /profile per request, split by what this run measured: auth-local's user and
    kernel CPU, PostgreSQL's, the token check alone (criterion), and the request log line (the
    same reads with auth-local at its default `info`, one line per request)."""
    hp = r["http"]
    if "rust_info" not in hp:
        return []
    # The bench's auth-local signs with SECRET_KEY, HS256 (as the peers do).
    verify = r["jwt"].get("jwt hs256/verify", {}).get("median_ms", float("nan"))
    lines = ["### Where auth-local's time goes", "",
             "CPU per request in the runs above (ours at `RUST_LOG=warn`, as the peers write no line per request), "
             "split into user and kernel time from `/proc/PID/stat`; the same two reads were then run against "
             "auth-local at `info`, its default, which writes one JSON line per request. The token check alone is "
             "criterion's HS256 verify above (the bench signs with SECRET_KEY, as the peers do). Times in ms per request.", "",
             "| endpoint | 2xx req/s at warn | at info | auth-local user | auth-local kernel | PostgreSQL | of user: HS256 verify | the request line (info − warn CPU) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for ep in ("/health", "/profile"):
        w, i = hp["rust"][ep], hp["rust_info"][ep]
        lines.append(f"| {ep} | {ok_rps(w):.0f} | {ok_rps(i):.0f} ({ok_rps(i) / ok_rps(w):.2f}×) | {w['user_ms_per_request']:.4f} | "
                     f"{w['kernel_ms_per_request']:.4f} | {w['pg_cpu_ms_per_request']:.4f} | "
                     f"{verify if ep == '/profile' else 0:.4f} | {i['cpu_ms_per_request'] - w['cpu_ms_per_request']:+.4f} |")
    lines += ["", "The kernel share is TCP over loopback and the wake-ups between wrk's, hyper's and tokio's "
              "threads. Within the user share, `perf record -g` on a build that keeps its symbols finds no "
              "single hot spot: the allocator is the largest item, ahead of the token check, hyper and axum "
              "(docs/benchmarks.md, \"Profiling auth-local\", has the command and a profile's figures).", ""]
    return lines


def write_paths_section(r, drawn):
    """The write paths with PostgreSQL's durability off and on, side by side."""
    wp = r.get("write_paths")
    if not wp:
        return []
    fast, durable = wp["fast"], wp["durable"]
    ours = r["kdf"]["auth-shared kdf (ours)"]["median_ms"]
    lines = ["## Write paths: fast settings against durable commits", "",
             "The same auth-local, the same loads, twice: first with PostgreSQL as `tempdb` starts it "
             f"(fsync {fast['settings']['fsync']}, synchronous_commit {fast['settings']['synchronous_commit']}, "
             f"full_page_writes {fast['settings']['full_page_writes']}), then with all three on "
             f"(`ALTER SYSTEM` and a reload; the WAL on this machine's disk, {durable['settings']['wal_on']}). "
             "/login is wrk with 16 connections for 20 s over 50 accounts; /refresh and /logout are the session runs "
             f"above ({WRK['seconds']} s); /password is {PASSWORD_CHANGES} changes one after another, each with the "
             "token the previous one answered, each token checked at once with a /profile. Transactions and WAL "
             "flushes are PostgreSQL's own counters (`pg_stat_database`, `pg_stat_wal`) read around each run; CPU is "
             "per request, auth-local / PostgreSQL.", "",
             "| path | settings | 2xx req/s | p50 / p99 ms | CPU ms per request | transactions per request | "
             "transactions/s | WAL flushes per request | ms per flush |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for ep in ("/login", "/refresh", "/logout", "/password"):
        for name, run_ in (("fast", fast), ("durable", durable)):
            x = run_[ep]
            if ep == "/password":
                rate, lat = "–", f"{x['median']:.1f} / p90 {x['p90']:.1f}"
            else:
                rate, lat = f"{ok_rps(x):.0f}", f"{x['p50_ms']:.2f} / {x['p99_ms']:.2f}"
            lines.append(f"| {ep} | {name} | {rate} | {lat} | {x['cpu_ms_per_request']:.3f} / "
                         f"{x['pg_cpu_ms_per_request']:.3f} | {x['commits_per_request']:.2f} | {x['commits_per_s']:.0f} | "
                         f"{x['wal_syncs_per_request']:.3f} | {x['ms_per_wal_sync']:.2f} |")
    each = [(m, wp[m]["/password"]["median"], wp[m].get("hash_ms_beside", ours)) for m in ("fast", "durable")]
    lines += ["", "Target: /password p50 at most two hashes + 25 ms, one hash timed (`kdf --json`) just before and "
              "after each mode's changes: " + "; ".join(f"{m} {v:.1f} ms against 2 × {h:.1f} + 25 = {2 * h + 25:.1f} ms"
                                                        for m, v, h in each)
              + f", {mark(all(v <= 2 * h + 25 for _, v, h in each))}. A change no longer waits for "
              "the clock's next second: it ends the session it was made in and carries it on under a new id, so "
              "every token signed before it is refused by its session, and the new one is signed at once.", ""]
    moved = []
    for ep in ("/login", "/refresh", "/logout"):
        f, d = fast[ep], durable[ep]
        moved.append(f"{ep}: requests/s {ok_rps(d) / max(ok_rps(f), 1e-9):.2f}×, p50 {d['p50_ms'] / max(f['p50_ms'], 1e-9):.2f}×, "
                     f"PostgreSQL CPU per request {d['pg_cpu_ms_per_request'] / max(f['pg_cpu_ms_per_request'], 1e-9):.2f}×")
    lines += ["Durable against fast, per path: " + "; ".join(moved) + ". A durable commit waits for its WAL flush; "
              "commits that arrive during one flush share the next, so flushes per request fall below one as "
              "requests overlap.", ""]
    lines += chart(drawn, "durable")
    return lines


def write_report(r, seconds, drawn=(), dest=ROOT / "bench" / "RESULTS.md"):
    m = r["machine"]
    ours = r["kdf"]["auth-shared kdf (ours)"]["median_ms"]
    lines = [
        "# Benchmark results",
        "",
        f"Measured {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} on {m['cpu']}, {m['cores']} cores, "
        f"{m['memory_gib']} GiB ({m['kernel']}); {m['rustc']}, Python {m['python']}, {m['postgres']}; commit {m['commit']}"
        f"{' plus uncommitted changes in the tree' if m.get('dirty') else ''}; 1-minute load average {m.get('load_avg_start', 0):.1f} at the start.",
        f"Command: `make bench` ({seconds / 60:.0f} minutes). Baselines measured in the same run. Shared machine: "
        "read ratios, not absolute figures. Medians; spread as p10–p90 or ± median absolute deviation.",
        "1-minute load average after each part (other work on the machine shows here): "
        + ", ".join(f"{STAGES.get(k, k)} {v:.1f}" for k, v in r.get("load_avg_1m", {}).items()) + ".",
        *([" ".join(f"The {STAGES.get(x['stage'], x['stage'])} stage was measured again at {x['at']}, commit {x['commit']} "
                    "(`bench/run.py --again`), with every service it compares in that same stage; the figures of the "
                    "other stages are from the run above." for x in r["reruns"])] if r.get("reruns") else []),
        "",
        "## Password hashing: one PBKDF2-HMAC-SHA256 at 600,000 iterations",
        "",
        "| | median | spread | × floor |",
        "| --- | --- | --- | --- |",
        f"| hardware floor: 1,200,000 SHA-256 compressions (`openssl speed -evp sha256`, 16 KiB blocks) | {r['floor_ms']:.1f} ms | 3 runs | 1.00 |",
    ]
    for name, v in r["kdf"].items():
        lines.append(f"| {name} | {v['median_ms']:.1f} ms | ± {v['mad_ms']:.1f} ms | {v['median_ms'] / r['floor_ms']:.2f} |")
    h = r["hashlib"]
    lines.append(f"| Python `hashlib.pbkdf2_hmac` (the Flask peer) | {h['median']:.1f} ms | {h['p10']:.1f}–{h['p90']:.1f} ms | {h['median'] / r['floor_ms']:.2f} |")
    lines += ["", f"Target: within 1.15× of the floor — ours {ours / r['floor_ms']:.2f}×, {mark(ours <= 1.15 * r['floor_ms'])}.", ""]
    lines += chart(drawn, "pbkdf2")
    lines += ["**What is measured where.** Every figure in this file is measured on the x86-64 machine above "
              "(SHA-NI: ours runs the iterations in registers). The template deploys arm64 (Graviton), where ours "
              "runs them in ARMv8 SHA-2 registers: that path is proven *correct* here only under emulation "
              "(qemu-user, `-cpu max`: `kdf-cross` runs the PBKDF2 tests on an aarch64 build against the "
              "`pbkdf2` crate), and emulation says nothing about speed. No Graviton machine is reachable here. "
              "On one, or in an arm64 Lambda, "
              "`make bench-kdf` (or the `kdf` binary built for aarch64; docs/benchmarks.md, \"PBKDF2 on Graviton\") prints the "
              "floor and our ratio to it on that CPU.", ""]

    lines += ["## JWT (criterion)", "", "Signing and verifying one access token as login and profile do "
              "(`bench/benches/jwt.rs`); medians ± median absolute deviation. RS256 signs with ring "
              "(constant-time), verification pins the algorithm.", ""]
    lines += jwt_rows(r["jwt"])

    lines += ["", "## Failed logins take the same time whatever failed", "",
              "The login handler against PostgreSQL at the default policy, the cases interleaved round by round "
              "(`cargo run --release -p auth-bench --bin enumeration`). A cheaper legacy hash is topped up with dummy "
              "iterations, an unknown identifier gets a full dummy hash, and every failure then waits for the floor: "
              "the failed-login time of the costliest kind of stored hash present, as `auth-admin import` and "
              "`migrate` measure it (shared/src/failure_floor.rs).", "", r["enumeration"].strip()]
    hp = r["http"]
    lines += ["", "## HTTP: `auth-local` against the Flask and Node.js peers", "",
              f"The Flask peer runs under gunicorn ({hp['peer_workers']} sync workers); the Node.js peer "
              f"(`bench/node_peer`: express, jsonwebtoken, pg, `crypto.pbkdf2`) as {hp.get('node_workers', 2)} processes "
              "under Node's `cluster`, on the Flask peer's users table. Each service's /health, a login and the "
              "profile it gives were checked (200, a token, u0's profile) before its load runs. All of them run at once and are "
              "measured endpoint by endpoint, one service after another (a shared host whose speed drifts moves one "
              f"endpoint's figures together, not one service's); /health and /profile in {READ_ROUNDS} such rounds, each "
              "service's median round shown (every round's figure is listed under the table), and the targets take "
              "the median of the rounds' ratios, each round's two figures measured within a minute of each other. "
              f"Same machine, same PostgreSQL, same load: wrk, {WRK['threads']} threads, {WRK['connections']} connections, "
              f"{WRK['seconds']} s per endpoint ({LOGIN_SECONDS} s for /login) after a 2 s warm-up; logins rotate over {USERS} accounts. "
              "*2xx req/s* counts successful answers only; CPU is per request, the service's processes / PostgreSQL's.", "",
              "| endpoint | service | 2xx req/s | ours ÷ this | p50 / p99 ms | non-2xx | CPU ms per request | one request alone, p50 ms |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    peers = [n for n in ("rust", "flask", "node") if n in hp]
    label = {"rust": "ours (auth-local)", "flask": "Flask", "node": "Node.js"}
    for ep in ("/health", "/profile", "/login"):
        for n in peers:
            a = hp[n][ep]
            ratio = paired_ratio(hp["rust"][ep], a)[0]
            lines.append(f"| {ep} | {label[n]} | {ok_rps(a):.0f} | {ratio:.1f}× | {a['p50_ms']:.2f} / {a['p99_ms']:.2f} | "
                         f"{a['non_2xx']} | {a['cpu_ms_per_request']:.3f} / {a['pg_cpu_ms_per_request']:.3f} | "
                         f"{a.get('serial_p50_ms', float('nan')):.2f} |".replace("| nan |", "| – |"))
    rounds = [f"{label[n]} {ep} " + " / ".join(f"{v:.0f}" for v in hp[n][ep]["rounds_rps"])
              for ep in ("/health", "/profile") for n in peers if "rounds_rps" in hp[n].get(ep, {})]
    if rounds:
        lines += ["", "2xx req/s of each round, in order: " + "; ".join(rounds) + "."]
    lines += ["", "Targets:"]
    for ep in ("/health", "/profile"):
        ours_ep = hp["rust"][ep]
        parts, ok = [], True
        for n, times in (("flask", 10), ("node", 3)):
            if n not in hp:
                continue
            x, each = paired_ratio(ours_ep, hp[n][ep])
            ok = ok and x >= times and ours_ep["p99_ms"] < hp[n][ep]["p99_ms"]
            rounds = f", the median of the rounds' {', '.join(f'{v:.1f}' for v in each)}" if each else ""
            parts.append(f"{x:.1f}× {label[n]} (target {times}×{rounds}), p99 {ours_ep['p99_ms']:.2f} against "
                         f"{hp[n][ep]['p99_ms']:.2f} ms")
        lines.append(f"- {ep}: {'; '.join(parts)}: {mark(ok)}.")
    one = hp["rust"]["/login"].get("serial_p50_ms", float("nan"))
    floor = hp.get("floor_ms_beside_serial", r["floor_ms"])
    lines.append(f"- one login over HTTP, alone, at most 1.10× the SHA-256 floor ({floor:.1f} ms, `openssl speed` just "
                 f"before and after the single-request runs): {one:.1f} ms = {one / floor:.2f}×, {mark(one <= 1.10 * floor)}.")
    hash_ms = hp.get("hash_ms_beside_login", ours)
    login_target = 0.95 * CORES / (hash_ms / 1000)
    lines.append(f"- logins/s at least 0.95 × cores ÷ one hash (timed with `kdf --json` just before and after ours' /login "
                 f"run) = 0.95 × {CORES} ÷ {hash_ms:.1f} ms = {login_target:.1f}: "
                 f"{ok_rps(hp['rust']['/login']):.1f} successful logins/s, {mark(ok_rps(hp['rust']['/login']) >= login_target)}.")
    lines.append("")
    lines += chart(drawn, "http")
    lines += where_the_time_goes(r)

    rust = hp["rust"]
    prof, ref, out = rust.get("/profile (beside sessions)", rust["/profile"]), rust["/refresh"], rust["/logout"]
    lines += ["## Sessions: `/refresh` and `/logout` on `auth-local`", "",
              "The Flask original has no sessions, so these are against `/profile` of the same `auth-local` process, measured "
              "in the same run just before them with the same wrk settings "
              f"({WRK['threads']} threads, {WRK['connections']} connections, {WRK['seconds']} s after a 2 s warm-up that has "
              "its own tokens and sessions). *2xx req/s* counts only successful answers; the last column is what the "
              "database says the run did, counted before and after it.", "",
              "| endpoint | req/s | 2xx req/s | ratio to /profile (2xx) | p50 / p99 ms | non-2xx | CPU per request: auth-local / PostgreSQL | in the database |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |",
              f"| /profile (same run) | {prof['rps']:.0f} | {ok_rps(prof):.0f} | 1.00 | {prof['p50_ms']:.2f} / {prof['p99_ms']:.2f} | {prof['non_2xx']} | "
              f"{prof['cpu_ms_per_request']:.3f} / {prof['pg_cpu_ms_per_request']:.3f} ms | – |",
              f"| /refresh (chained rotation) | {ref['rps']:.0f} | {ok_rps(ref):.0f} | {ok_rps(ref) / ok_rps(prof):.2f} | "
              f"{ref['p50_ms']:.2f} / {ref['p99_ms']:.2f} | {ref['non_2xx']} | {ref['cpu_ms_per_request']:.3f} / {ref['pg_cpu_ms_per_request']:.3f} ms | "
              f"{ref['db_done']} tokens consumed (wrk counted {ref['requests'] - ref['non_2xx']} 200s) |",
              f"| /logout (refresh_token body, a live session each) | {out['rps']:.0f} | {ok_rps(out):.0f} | {ok_rps(out) / ok_rps(prof):.2f} | "
              f"{out['p50_ms']:.2f} / {out['p99_ms']:.2f} | {out['non_2xx']} | {out['cpu_ms_per_request']:.3f} / {out['pg_cpu_ms_per_request']:.3f} ms | "
              f"{out['db_done']} sessions ended (wrk counted {out['requests'] - out['non_2xx']} 204s) |",
              "",
              "Everything shares the machine's "
              f"{CORES} cores: wrk, auth-local and PostgreSQL (and whatever else ran: the 1-minute load average after these three runs "
              f"was {prof.get('load_avg_1m', 0):.1f}, {ref.get('load_avg_1m', 0):.1f} and {out.get('load_avg_1m', 0):.1f}), so requests per "
              "second follow the CPU each request costs the two server processes, shown beside them.",
              "",
              "How the load is made:",
              f"- **/refresh** presents every refresh token once, as a client does: before each run the driver logs in "
              f"{WRK['connections'] + WRK['threads']} times (one login per connection, plus one per wrk thread that wrk's "
              "start-up check of `request()` takes), and the wrk script (`LUA_REFRESH` in `bench/run.py`) chains the tokens "
              "per wrk thread: `request()` takes a token from the thread's queue, `response()` reads the new `refresh_token` "
              "out of the 200 and puts it back. wrk's `response()` is not told which connection answered, so the chain is per "
              "thread, not per connection; each connection has one request in flight, so each token is still presented "
              "exactly once (no reuse-interval path: every refresh consumes a fresh token, locks its session, inserts the "
              f"successor and moves `refreshed_at`). Requests sent with an empty queue (after a failed refresh): "
              f"{ref.get('starved', 'not counted')}; refresh answers that were not a 200 with a token: {ref.get('refused', 'not counted')}.",
              f"- **/logout** uses the unauthenticated form, `{{\"refresh_token\": ...}}`, and every request ends a different live "
              f"session: {LOGOUT_SESSIONS_PER_S:,} sessions per second of run are written before each run, as a login writes them "
              "(a `sessions` row and the SHA-256 of its first refresh token; made in one SQL statement rather than by "
              f"{LOGOUT_SESSIONS_PER_S * WRK['seconds']:,} 600,000-iteration logins, then `VACUUM ANALYZE`), and each wrk "
              "thread walks its own range of them. Requests that ran past the range (and so met already-ended sessions): "
              f"{out.get('wrapped', 'not counted')}. This answers 204 whatever the token, so the last column is the check "
              "that the run ended real sessions.",
              "- PostgreSQL here runs as `tempdb` starts it, with `fsync`, `synchronous_commit` and `full_page_writes` off: "
              "/refresh and /logout commit writes, and on a database that flushes its WAL at commit they would also wait for "
              "that flush; /profile only reads.",
              "",
              f"Target: /refresh at least half of /profile's requests per second: {ok_rps(ref) / ok_rps(prof):.2f}×, "
              f"{mark(ok_rps(ref) >= 0.5 * ok_rps(prof))}.", ""]

    lam = r["lambda"]
    lines += ["## Cold start", "",
              f"Each function binary (x86-64 release build here) started {lam['starts']} times behind the Lambda Runtime API "
              "emulator, with its signing key in moto and its database on loopback. *Init* is exec to its first "
              "`invocation/next`; *first response* adds the first invocation, which opens the database connection.", "",
              "Every first invocation is one that works: refresh presents a live refresh token (a chain started by a real "
              "login through the login binary, each start presenting the token the previous one was handed), logout a "
              "Bearer access token of a session of its own, password a real change of the current password (alternating "
              "between two, each with the access token the previous change returned) or, in the *no hash* row, a request "
              "for an account locked by the login throttle, refused (429) after the token and session checks and before "
              "any hash. *Warm* is one process serving 500 invocations (100 for login, 30 for the password change), every "
              "answer's status checked.", "",
              "| | init median | first response median (p10–p90) | warm median |", "| --- | --- | --- | --- |"]
    for f in lam["functions"]:
        fr = f["first_response_ms"]
        bad = f" ({f['warm_unexpected_status']} other statuses)" if f.get("warm_unexpected_status") else ""
        lines.append(f"| {f['function']} ({f['status']}) | {f['init_ms']['median']:.1f} ms | {fr['median']:.1f} ms "
                     f"({fr['p10']:.1f}–{fr['p90']:.1f}) | {f['warm_ms']['median']:.1f} ms{bad} |")
    pc = r["peer_cold_start_ms"]
    lines.append(f"| Flask peer: gunicorn start to first /health 200 | – | {pc['median']:.0f} ms ({pc['p10']:.0f}–{pc['p90']:.0f}) | – |")
    hashing = ("login", "password (real change)", "login RS256")
    worst = max(f["first_response_ms"]["median"] for f in lam["functions"] if f["function"] not in hashing)
    by_label = {f["function"]: f for f in lam["functions"]}

    def cold(label):
        f = by_label[label]["first_response_ms"]
        return f"{f['median']:.1f} ms (p90 {f['p90']:.1f} ms), {mark(f['median'] < 25)}"

    change = by_label["password (real change)"]
    lines += ["", f"Target: under 25 ms median: {mark(worst < 25)} for every function (worst {worst:.1f} ms) when the first "
              "request checks no password; a first *successful* login adds one 600,000-iteration hash, the work factor "
              "chosen on purpose.", "",
              "Target for the new functions, under 25 ms median first response each:",
              f"- refresh (a real rotation): {cold('refresh (rotation)')}.",
              f"- logout (Bearer, ends its session): {cold('logout (bearer, local scope)')}.",
              f"- password, first request refused before any hash: {cold('password (locked account: no hash)')}.",
              f"- password, first request a real change: {change['first_response_ms']['median']:.0f} ms "
              f"(p90 {change['first_response_ms']['p90']:.0f} ms), **not met**, and not by start-up: its init is "
              f"{change['init_ms']['median']:.1f} ms and a warm change takes {change['warm_ms']['median']:.0f} ms too. A change "
              "runs two 600,000-iteration hashes (checking the current password, hashing the new one), then waits for the "
              "next whole second before signing the new access token, since tokens dated in the second of a password change "
              "are refused (`access::grant_response`); that wait is 0–1 s, half a second on average (the harness starts "
              "each change at a different point of the clock's second, spread evenly, as users' changes would fall; back to "
              "back, every change would wait most of a second).", ""]
    accounts = [f for f in lam["functions"] if f.get("binary") in ACCOUNT_BINARIES]
    if accounts:
        lines += ["The account functions (sign-up, verification, reset, email change, and the mailer SQS triggers), "
                  "with the data key in its own secret in moto, the mail queue in moto's SQS and SES in moto. Each first "
                  "request is answered before any password hash: signup and change-email from a source address whose "
                  "hourly mail limit is used up (429), verify-email and reset-password with a link token no mail carried "
                  "(400), resend-verification and forgot-password for an unknown address (202, one job on the queue), each "
                  "from a source address of its own; the mailer mails a reset code through SES to a different known user "
                  "each invocation. Under 25 ms median first response each:", ""]
        lines += [f"- {f['function']}: {cold(f['function'])}." for f in accounts]
        lines.append("")
    second = [f for f in lam["functions"] if f.get("binary") in MFA_BINARIES]
    if second:
        lines += ["The second-factor functions, with the data key in its own secret in moto (the TOTP secrets are sealed "
                  "under it). login-mfa answers a real second step every time: each invocation, first or warm, is a "
                  "different account with an active TOTP factor and a login mfa_token waiting (made by the harness as "
                  "/login and /mfa/totp/verify leave them), with the code its secret gives at that moment, so no step is "
                  "used twice; it hashes no password, and opens a session as a login does. mfa-status reads alice's state "
                  "(200); mfa-totp, mfa-totp-disable and mfa-recovery-codes are asked for an account the login throttle "
                  "locks, refused (429) after the token check and before any hash or code check; mfa-totp-verify has no "
                  "pending factor to confirm (400). Under 25 ms median first response each:", ""]
        lines += [f"- {f['function']}: {cold(f['function'])}." for f in second]
        if "login-mfa (a real second step)" in by_label and "refresh (rotation)" in by_label:
            mfa, ref = by_label["login-mfa (a real second step)"], by_label["refresh (rotation)"]
            lines.append(f"- /login/mfa warm, one process: {mfa['warm_ms']['median']:.2f} ms median against /refresh's "
                         f"{ref['warm_ms']['median']:.2f} ms ({mfa['warm_ms']['median'] / ref['warm_ms']['median']:.2f}×); "
                         f"CPU {mfa['cpu_ms_per_request']:.2f} against {ref['cpu_ms_per_request']:.2f} ms per request. A second "
                         "step reads and locks the mfa_token, the account and the factor, opens the sealed secret (AES-256-GCM), "
                         "checks three steps, consumes the token and opens a session: seven round trips to PostgreSQL (begin; the "
                         "token's owner; the account's attempt lock, its row and the token's row, pipelined; the throttle, the "
                         "daily lock and the factor's row, pipelined; the step used and the daily count cleared; the token used, "
                         "the login recorded and the session opened; commit) where a refresh makes three, and no hash.")
        lines.append("")
    keys = [f for f in lam["functions"] if f.get("binary") in PASSKEY_BINARIES]
    if keys:
        lines += ["The passkey functions (webauthn-rs 0.6, pure Rust), with the data key in its own secret in moto and "
                  "the relying party localhost. passkey-register-options is asked for an account the login throttle locks "
                  "(429, before any hash); passkey-register gets a well-formed registration (the tests' software "
                  "authenticator's) for a challenge never issued (400 invalid_passkey, after one database round trip); "
                  "passkey-login-options signs a challenge (200, no database); passkey-login gets a well-formed assertion "
                  "whose challenge it never signed (401, refused before the database); passkeys lists alice's (200). Under "
                  "25 ms median first response each:", ""]
        lines += [f"- {f['function']}: {cold(f['function'])}." for f in keys]
        lines.append("")
    en = lam.get("enumeration", {})
    if en:
        lines += ["### Enumeration: the same time whether the address has an account or not", "",
                  f"One warm process each, {ENUMERATION_ROUNDS} requests of each kind alternated in pairs (the order of each "
                  "pair alternating too), every one from a source address of its own and every answer a 202. A sign-up hashes "
                  "the password in both cases and puts one job on the queue in both; a reset request hashes nothing and puts one "
                  "job on the queue in both. Target: the ratio of the medians within 0.9–1.1.", "",
                  "| route | first kind, median (p10–p90) | second kind, median (p10–p90) | ratio | |", "| --- | --- | --- | --- | --- |"]
        for route, e in en.items():
            a, b = e["first_ms"], e["second_ms"]
            lines.append(f"| /{route if route == 'signup' else 'password/forgot'} | {e['kinds'][0]}: {a['median']:.2f} ms "
                         f"({a['p10']:.2f}–{a['p90']:.2f}) | {e['kinds'][1]}: {b['median']:.2f} ms ({b['p10']:.2f}–{b['p90']:.2f}) "
                         f"| {e['ratio']:.3f} | {mark(0.9 <= e['ratio'] <= 1.1)} |")
        lines.append("")
    if "jwks RS256" in by_label:
        rs_login, hs_login = by_label.get("login RS256"), by_label.get("login")
        rs_init = by_label.get("login RS256 (throttled: no hash)", {}).get("init_ms", {}).get("median")
        hs_init = by_label.get("login (throttled: no hash)", {}).get("init_ms", {}).get("median")
        lines += ["With TOKEN_SIGNING_ALG=RS256: the secret in moto holds a 2048-bit RSA key in PKCS#8 PEM, "
                  "generated by the harness; the functions read it, parse it and check it (ring) at start-up.", "",
                  f"- jwks (the JWK Set, no database): {cold('jwks RS256')}.",
                  f"- login with the RSA key, first request refused before any hash: {cold('login RS256 (throttled: no hash)')}"
                  + (f"; its init is {rs_init:.1f} ms against {hs_init:.1f} ms with the HS256 key." if rs_init and hs_init else "."),
                  ]
        if rs_login and hs_login:
            lines.append(f"- login with the RSA key, a successful login (one hash, an RS256 signature): "
                         f"{rs_login['first_response_ms']['median']:.1f} ms first response, "
                         f"{rs_login['warm_ms']['median']:.1f} ms warm, against {hs_login['first_response_ms']['median']:.1f} "
                         f"and {hs_login['warm_ms']['median']:.1f} ms with HS256.")
        lines.append("")
    lines += chart(drawn, "cold-starts")

    lines += ["## Size and memory", "", "| | arm64 `bootstrap.zip` | peak RSS while serving |", "| --- | --- | --- |"]
    rss = {}
    for f in lam["functions"]:
        name = f.get("binary", f["function"].split(" ")[0])
        rss[name] = max(rss.get(name, 0), f["peak_rss_kib"] / 1024)
    for name, size in r["zip_bytes"].items():
        mem = f"{rss[name]:.1f} MiB" if name in rss else (f"{hp['flask']['peak_rss_mib']:.1f} MiB per worker" if "flask" in name else "–")
        lines.append(f"| {name} | {size / 1e6:.2f} MB | {mem} |")
    lines.append(f"| auth-local (every route, after the load runs) | – | {hp['rust']['peak_rss_mib']:.1f} MiB |")
    fn_zip = max(v for k, v in r["zip_bytes"].items() if "flask" not in k)
    fn_rss = max(rss.values())
    z = r["zip_bytes"]
    cp = r["common_passwords"]
    lines += ["", f"Targets: under 3 MB zipped ({mark(fn_zip < 3e6)} for all {len(FUNCTIONS)}, largest {fn_zip / 1e6:.2f} MB) and "
              f"under 20 MB RSS ({mark(fn_rss < 20)}, largest {fn_rss:.1f} MiB).", "",
              f"The common-password list (`shared/data/common-passwords.txt`, {cp['entries']:,} entries, {cp['bytes'] / 1e3:.0f} kB; "
              f"{cp['deflated_bytes'] / 1e3:.0f} kB deflated on its own) is embedded only in `password` (and `auth-admin`). "
              f"password's zip is {(z['password'] - z['logout']) / 1e3:+.0f} kB against logout's, which has the same "
              f"session and token code but neither the list nor password hashing, and {(z['password'] - z['login']) / 1e3:+.0f} kB "
              "against login's, which hashes passwords but has no list: the list accounts for roughly the latter.", ""]
    if "jwks" in z and "rotate-key" in z:
        lines += [f"The RS256 functions: jwks {z['jwks'] / 1e6:.2f} MB ({mark(z['jwks'] < 3e6)}), rotate-key "
                  f"{z['rotate-key'] / 1e6:.2f} MB ({mark(z['rotate-key'] < 3e6)}; it generates RSA keys with the `rsa` "
                  "crate and runs only at rotation, so it has no cold-start row).", ""]

    lines += ["## Cost of one million requests on Lambda (arm64, us-east-1 prices)", "",
              "From the CPU time per request measured above (Rust: the function binary behind the emulator; Flask: the "
              "gunicorn workers under load) and the single-request wall time. Lambda gives CPU in proportion to memory "
              "(a full vCPU at 1769 MB), so the CPU part of a request stretches below that; waiting on the database does "
              "not. Billed per 1 ms at $0.0000133334 per GB-s, plus $0.20 per million requests. The Flask figures price "
              "the peer as if it ran on Lambda's Python runtime.", "",
              "| | CPU per request | 128 MB | 512 MB | 1769 MB |", "| --- | --- | --- | --- | --- |"]
    by = {f["function"]: f for f in lam["functions"]}
    rows = [("1M logins, Rust", by["login"]["cpu_ms_per_request"], by["login"]["warm_ms"]["median"]),
            ("1M logins, Flask", hp["flask"]["/login"]["cpu_ms_per_request"], hp["flask"]["/login"]["serial_p50_ms"]),
            ("1M profile reads, Rust", by["profile"]["cpu_ms_per_request"], by["profile"]["warm_ms"]["median"]),
            ("1M profile reads, Flask", hp["flask"]["/profile"]["cpu_ms_per_request"], hp["flask"]["/profile"]["serial_p50_ms"]),
            ("1M refreshes, Rust", by["refresh (rotation)"]["cpu_ms_per_request"], by["refresh (rotation)"]["warm_ms"]["median"]),
            ("1M logouts, Rust", by["logout (bearer, local scope)"]["cpu_ms_per_request"],
             by["logout (bearer, local scope)"]["warm_ms"]["median"])]
    for label, cpu, wall in rows:
        cells = []
        for mem in (128, 512, 1769):
            cost, dur = lambda_cost(cpu, wall, mem)
            cells.append(f"${cost:.2f} ({dur:.1f} ms)")
        lines.append(f"| {label} | {cpu:.2f} ms | " + " | ".join(cells) + " |")
    lines += ["", "Login is CPU-bound: its cost is about the same at every size (GB-seconds stay constant as the CPU share "
              "grows) while its latency drops from about a second to tens of milliseconds, hence 1769 MB in the template. "
              "Profile reads, refreshes and logouts are cheapest at 128 MB.", ""]
    lines += chart(drawn, "cost")
    lines += write_paths_section(r, drawn)
    import scale

    try:
        lines += [scale.section(r)]
        lines += chart(drawn, "scale")
    except scale.Missing as e:
        lines += ["## Scale, on paper", "", f"Not computed: this run lacks {e}.", ""]
    glance = targets_at_a_glance(r)
    if glance:  # after the header, before the first section
        at = lines.index("## Password hashing: one PBKDF2-HMAC-SHA256 at 600,000 iterations")
        lines[at:at] = ["## Targets of the sessions and RS256 issues at a glance", "", *glance, ""]
    dest.write_text("\n".join(lines))
    log(f"wrote {dest}")


RERUNNABLE = {"http": http_runs, "write_paths": write_paths, "lambda": lambda_runs, "peer_cold_start_ms": peer_cold_starts}


def rerun(names):
    """Measures the stages `names` (of RERUNNABLE) again, in place of theirs in results.json, and
    rewrites the report, which says which stages came from which commit and when."""
    out = ROOT / "bench" / "results.json"
    results = json.loads(out.read_text())
    setup_databases()
    commit = run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT).stdout.strip()
    for name in names:
        log(f"again: {name}")
        results[name] = RERUNNABLE[name]()
        results["load_avg_1m"][name] = os.getloadavg()[0]
        # The figures of an earlier rerun of this stage are gone: so is its entry.
        results["reruns"] = [x for x in results.get("reruns", []) if x["stage"] != name]
        results["reruns"].append({"stage": name, "commit": commit,
                                  "at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")})
        out.write_text(json.dumps(results, indent=2))
    report(results)


if __name__ == "__main__":
    if sys.argv[1:] == ["--report"]:  # redraw the charts and rewrite RESULTS.md from results.json
        report(json.loads((ROOT / "bench" / "results.json").read_text()))
    elif sys.argv[1:2] == ["--again"]:  # e.g. --again http,write_paths (under tempdb, as make bench runs it)
        rerun(sys.argv[2].split(","))
    else:
        main()
