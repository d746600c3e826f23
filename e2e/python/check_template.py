"""Checks template.yaml's wiring against what the service promises: routes to their own
functions, runtime and architecture, build metadata, the generated signing key, least-privilege
policies (each function may read exactly the secrets it uses), CORS, login throttling, the
/test-db switch, the ALB option, session settings, logs, metric filters, alarms, outputs.
Also transforms it with the real SAM translator so the generated resources are checked too.

usage: check_template.py TEMPLATE
"""
import json
import sys

from cfnlint.decode import decode

path = sys.argv[1]
t, matches = decode(path)
assert not matches, matches
R = t["Resources"]
P = t["Parameters"]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


def props(name):
    return R[name]["Properties"]


functions = {"HealthFunction": "health", "TestDbFunction": "test-db", "LoginFunction": "login", "ProfileFunction": "profile",
             "RefreshFunction": "refresh", "LogoutFunction": "logout", "PasswordFunction": "password"}
# Functions that sign or verify tokens (and so read the signing key); the rest never see it.
token_functions = ("LoginFunction", "ProfileFunction", "RefreshFunction", "LogoutFunction", "PasswordFunction")
# Functions that open or check sessions, and so get the session settings.
session_functions = token_functions
# Functions that hash passwords get a full vCPU; the others stay small.
hashing_functions = ("LoginFunction", "PasswordFunction")
# Reserved concurrency parameter (and its condition) of each function.
reserve = {"HealthFunction": "Health", "TestDbFunction": "TestDb", "LoginFunction": "Login", "ProfileFunction": "Profile",
           "RefreshFunction": "Refresh", "LogoutFunction": "Logout", "PasswordFunction": "Password"}
# The secrets each function may read, by the logical name that refers to them.
secrets_of = {name: ({"SigningKeySecret", "DatabaseSecretArn"} if name in token_functions else {"DatabaseSecretArn"})
              for name in functions}
g = t["Globals"]["Function"]
check(g["Runtime"] == "provided.al2023", "runtime provided.al2023")
check(g["Architectures"] == ["arm64"], "arm64")
check(g["Handler"] == "bootstrap", "handler bootstrap")
check(g["LoggingConfig"]["LogFormat"] == "JSON", "JSON logs")
for name, binary in functions.items():
    check(R[name]["Type"] == "AWS::Serverless::Function", f"{name} is a function")
    md = R[name]["Metadata"]
    check(md["BuildMethod"] == "rust-cargolambda", f"{name} builds with cargo-lambda")
    check(md["BuildProperties"]["Binary"] == binary, f"{name} builds binary {binary}")
    check("LogGroup" in props(name)["LoggingConfig"], f"{name} logs to a log group with retention")
    # Reserved concurrency from its own parameter, left unreserved when that is 0.
    stem = reserve[name]
    check(props(name).get("ReservedConcurrentExecutions")
          == {"Fn::If": [f"Reserve{stem}", {"Ref": f"{stem}ReservedConcurrency"}, {"Ref": "AWS::NoValue"}]},
          f"{name} reserves {stem}ReservedConcurrency")
    check(t["Conditions"].get(f"Reserve{stem}") == {"Fn::Not": [{"Fn::Equals": [{"Ref": f"{stem}ReservedConcurrency"}, 0]}]},
          f"condition Reserve{stem}")
    check(P.get(f"{stem}ReservedConcurrency", {}).get("Type") == "Number", f"parameter {stem}ReservedConcurrency")
    log_group = props(name)["LoggingConfig"].get("LogGroup", {}).get("Ref")
    check(log_group in R and R[log_group]["Type"] == "AWS::Logs::LogGroup"
          and props(log_group).get("RetentionInDays") == {"Ref": "LogRetentionDays"}, f"{name}'s log group keeps LogRetentionDays")

# Routes, each to its own function.
routes = {}
for name in functions:
    for ev in props(name).get("Events", {}).values():
        if ev["Type"] == "HttpApi":
            routes[f'{ev["Properties"]["Method"]} {ev["Properties"]["Path"]}'] = name
expected_routes = {"GET /health": "HealthFunction", "HEAD /health": "HealthFunction",
                   "POST /login": "LoginFunction", "GET /profile": "ProfileFunction",
                   "POST /refresh": "RefreshFunction", "POST /logout": "LogoutFunction", "POST /password": "PasswordFunction"}
check(routes == expected_routes, f"routes {routes}")
check(props("TestDbRoute")["RouteKey"] == "GET /test-db", "GET /test-db route")
check(R["TestDbRoute"]["Condition"] == "TestDbOn" and R["TestDbFunction"]["Condition"] == "TestDbOn", "/test-db can be switched off")
check(props("TestDbRoute")["AuthorizationType"] == {"Fn::If": ["TestDbIam", "AWS_IAM", "NONE"]}, "/test-db can be IAM-only")
check(set(P["TestDbAccess"]["AllowedValues"]) == {"public", "iam", "off"}, "TestDbAccess values")

# Login and password hash passwords: a full vCPU; the others stay small.
for name in hashing_functions:
    check(props(name).get("MemorySize") == 1769, f"{name} at 1769 MB")
check(g["MemorySize"] <= 256 and all("MemorySize" not in props(n) for n in functions if n not in hashing_functions), "others small")

# The signing key: generated at deploy time, at least 32 bytes of entropy.
gen = props("SigningKeySecret")["GenerateSecretString"]
check(R["SigningKeySecret"]["Type"] == "AWS::SecretsManager::Secret", "secret")
check(gen["PasswordLength"] >= 43 and gen.get("ExcludePunctuation") is True, "62-symbol alphabet, >= 256 bits")
for name in token_functions:
    env = props(name)["Environment"]["Variables"]
    check(env.get("SECRET_ARN") == {"Ref": "SigningKeySecret"}, f"{name} gets SECRET_ARN")
    for var, param in (("JWT_ISSUER", "JwtIssuer"), ("JWT_AUDIENCE", "JwtAudience"), ("TOKEN_TTL_SECONDS", "TokenTtlSeconds")):
        check(env.get(var) == {"Ref": param}, f"{name} gets {var}")
for name in functions:
    if name not in token_functions:
        text = json.dumps(props(name))
        check("SigningKeySecret" not in text, f"{name} may not read the signing key")


# Least privilege, as written: every policy is a GetSecretValue on one named secret, the database
# secret's only when there is one, and each function names exactly the secrets it uses.
def policy_secrets(policy):
    """The secrets one template policy entry grants, or None when it is not of the allowed forms."""
    if isinstance(policy, dict) and set(policy) == {"AWSSecretsManagerGetSecretValuePolicy"}:
        ref = policy["AWSSecretsManagerGetSecretValuePolicy"].get("SecretArn", {})
        return {ref["Ref"]} if isinstance(ref, dict) and set(ref) == {"Ref"} else None
    if isinstance(policy, dict) and set(policy) == {"Fn::If"}:
        cond, then, otherwise = policy["Fn::If"]
        granted = policy_secrets(then)
        ok = cond == "HasDatabaseSecret" and otherwise == {"Ref": "AWS::NoValue"} and granted == {"DatabaseSecretArn"}
        return granted if ok else None
    return None


for name in functions:
    granted = set()
    for policy in props(name).get("Policies", []):
        secrets = policy_secrets(policy)
        check(secrets is not None, f"{name}: policy of an unexpected form {json.dumps(policy)}")
        granted |= secrets or set()
    check(granted == secrets_of[name], f"{name} may read exactly {sorted(secrets_of[name])}, not {sorted(granted)}")
check("SECRET_ARN" not in g["Environment"]["Variables"], "no global SECRET_ARN")
for name in functions:
    env = props(name).get("Environment", {}).get("Variables", {})
    check(env.get("SECRET_KEY", "") == "", f"{name}: SECRET_KEY is never given a value in AWS")

# Database parameters.
for p in ("DatabaseSecretArn", "DatabaseHost", "DatabasePort", "DatabaseName", "DatabaseSslMode", "DatabaseSslRootCert", "DatabaseUrl",
          "SubnetIds", "SecurityGroupIds", "CreateSecretsManagerEndpoint", "JwtIssuer", "JwtAudience", "TokenTtlSeconds"):
    check(p in P, f"parameter {p}")
check(P["DatabaseUrl"].get("NoEcho") is True, "DatabaseUrl is NoEcho")

# Sessions: the three settings, with the contract's defaults and ranges, reach every function
# that opens or checks sessions (profile refuses an access token whose session has ended).
sessions = {"SessionTtlSeconds": ("SESSION_TTL_SECONDS", 2592000, 300, 31536000),
            "SessionIdleTimeoutSeconds": ("SESSION_IDLE_TIMEOUT_SECONDS", 0, 0, 31536000),
            "RefreshReuseIntervalSeconds": ("REFRESH_REUSE_INTERVAL_SECONDS", 10, 0, 300)}
for param, (var, default, low, high) in sessions.items():
    spec = P.get(param, {})
    check(spec.get("Type") == "Number" and int(spec.get("Default", -1)) == default, f"parameter {param} defaults to {default}")
    check(int(spec.get("MinValue", -1)) == low and int(spec.get("MaxValue", -1)) == high, f"parameter {param} is {low}..{high}")
    for name in functions:
        env = props(name).get("Environment", {}).get("Variables", {})
        if name in session_functions:
            check(env.get(var) == {"Ref": param}, f"{name} gets {var}")
        else:
            check(var not in env, f"{name} has no use for {var}")
    check(var not in g["Environment"]["Variables"], f"no global {var}")
check(P["DatabaseSslMode"]["Default"] == "verify-full", "verify-full by default")
check(R["SecretsManagerEndpoint"]["Condition"] == "CreateEndpoint", "optional Secrets Manager endpoint")
check(props("SecretsManagerEndpoint")["VpcEndpointType"] == "Interface", "interface endpoint")

# Edge: CORS from a parameter, exposing the three headers; login throttling.
cors = props("HttpApi")["CorsConfiguration"]["Fn::If"]
check(cors[0] == "HasCors" and cors[2] == {"Ref": "AWS::NoValue"}, "CORS off when empty")
check(sorted(cors[1]["ExposeHeaders"]) == ["Retry-After", "WWW-Authenticate", "x-request-id"], "exposed headers")
throttle = props("HttpApi")["RouteSettings"]["POST /login"]
check(throttle["ThrottlingRateLimit"] == {"Ref": "LoginThrottleRateLimit"}, "login rate limit")
check(throttle["ThrottlingBurstLimit"] == {"Ref": "LoginThrottleBurstLimit"}, "login burst limit")

# ALB option.
check(R["AlbHealthTargetGroup"]["Condition"] == "HasAlb" and props("AlbHealthTargetGroup")["TargetType"] == "lambda", "ALB target group")
check(props("AlbInvokePermission")["Principal"] == "elasticloadbalancing.amazonaws.com", "ALB invoke permission")

# Metrics and alarms.
patterns = {props(n)["FilterPattern"] for n, r in R.items() if r["Type"] == "AWS::Logs::MetricFilter"}
for ev in ("login_failed", "login_throttled", "login_succeeded", "refresh_token_reused"):
    check(f'{{ $.event = "{ev}" }}' in patterns, f"metric filter {ev}")
check(props("Api5xxAlarm")["MetricName"] == "5xx", "5xx alarm")
check(props("ThrottledLoginsAlarm")["MetricName"] == "LoginThrottled", "throttled-login alarm")
# A reused refresh token (a stolen one, or a client bug) alarms at its first occurrence. Only the
# refresh function rotates tokens, so the filter reads its log group.
reuse = [n for n, r in R.items() if r["Type"] == "AWS::Logs::MetricFilter"
         and props(n)["FilterPattern"] == '{ $.event = "refresh_token_reused" }']
check(len(reuse) == 1, "one refresh_token_reused metric filter")
if reuse:
    f = props(reuse[0])
    check(f["LogGroupName"] == {"Ref": "RefreshLogGroup"}, "refresh_token_reused is counted in the refresh function's log group")
    check(props("RefreshFunction")["LoggingConfig"]["LogGroup"] == {"Ref": "RefreshLogGroup"}, "the refresh function logs to RefreshLogGroup")
    (tr,) = f["MetricTransformations"]
    alarms = [n for n, r in R.items() if r["Type"] == "AWS::CloudWatch::Alarm"
              and props(n).get("MetricName") == tr["MetricName"] and props(n).get("Namespace") == tr["MetricNamespace"]]
    check(len(alarms) == 1, f"an alarm on {tr['MetricName']}")
    for n in alarms:
        a = props(n)
        check(a["Statistic"] == "Sum" and a["ComparisonOperator"] == "GreaterThanOrEqualToThreshold" and a["Threshold"] == 1,
              f"{n} fires on any occurrence")
        check(a.get("TreatMissingData") == "notBreaching", f"{n}: no data is not an alarm")
        check(a.get("AlarmActions") == {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]},
              f"{n} notifies AlarmTopicArn")

outputs = t["Outputs"]
for o in ("ApiUrl", "SigningKeySecretArn", *(f"{name}Name" for name in functions)):
    check(o in outputs, f"output {o}")

# The SAM translator's output: least-privilege roles as generated.
import os
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
from samtranslator.translator.transform import transform
from samtranslator.public.translator import ManagedPolicyLoader  # noqa: F401


class NoPolicies:
    def load(self):
        return {"AWSLambdaBasicExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
                "AWSLambdaVPCAccessExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"}


raw = json.loads(json.dumps(t))
# As `sam validate` does: local code locations become placeholders the translator accepts.
raw["Globals"]["Function"]["CodeUri"] = "s3://bucket/code.zip"
raw["Resources"]["CaBundleLayer"]["Properties"]["ContentUri"] = "s3://bucket/layer.zip"
out = transform(raw, {"DatabaseSecretArn": "", "SubnetIds": "", "CorsAllowedOrigins": ""}, NoPolicies())
roles = {k: v for k, v in out["Resources"].items() if v["Type"] == "AWS::IAM::Role"}


def statements(node):
    """Every IAM statement inside a role's inline policies, through Fn::If branches."""
    if isinstance(node, list):
        for item in node:
            yield from statements(item)
    elif isinstance(node, dict):
        if "Effect" in node and "Action" in node:
            yield node
        else:
            for value in node.values():
                yield from statements(value)


def refs(node):
    """The logical names a CloudFormation value refers to."""
    if isinstance(node, list):
        return set().union(*map(refs, node)) if node else set()
    if isinstance(node, dict):
        if set(node) == {"Ref"}:
            return {node["Ref"]}
        return set().union(*map(refs, node.values())) if node else set()
    return set()


for fn in functions:
    role = roles[f"{fn}Role"]
    actions = json.dumps(role["Properties"].get("Policies", []))
    if fn in token_functions:
        check("secretsmanager:GetSecretValue" in actions, f"{fn} role reads the key")
    check("secretsmanager:*" not in actions and '"*"' not in actions.replace('"Resource": "*"', ""), f"{fn} role has no wildcards: {actions}")
    if fn not in token_functions:
        check("SigningKeySecret" not in actions, f"{fn} role cannot read the key")
    granted = set()
    for st in statements(role["Properties"].get("Policies", [])):
        acts = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        check(st["Effect"] == "Allow" and acts == ["secretsmanager:GetSecretValue"], f"{fn} role: only GetSecretValue, not {acts}")
        granted |= refs(st["Resource"])
    check(granted == secrets_of[fn], f"{fn} role reads exactly {sorted(secrets_of[fn])}, not {sorted(granted)}")
    check(set(role["Properties"].get("ManagedPolicyArns", [])) <= set(NoPolicies().load().values()),
          f"{fn} role: only the basic execution and VPC access managed policies")

# The generated API: each route integrates with its own function.
paths = out["Resources"]["HttpApi"]["Properties"]["Body"]["paths"]
for route, fn in expected_routes.items():
    method, path = route.split(" ")
    uri = json.dumps(paths.get(path, {}).get(method.lower(), {}).get("x-amazon-apigateway-integration", {}).get("uri"))
    check(f"${{{fn}.Arn}}" in uri, f"{route} invokes {fn}")

if failures:
    sys.exit("template check failed:\n- " + "\n- ".join(failures))
print(f"template check: {len(R)} resources, {len(routes) + 1} routes, all promises kept")
