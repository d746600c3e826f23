"""Checks template.yaml's wiring against what the service promises: routes to their own
functions, runtime and architecture, build metadata, the generated signing key, least-privilege
policies, CORS, login throttling, the /test-db switch, the ALB option, logs, alarms, outputs.
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


functions = {"HealthFunction": "health", "TestDbFunction": "test-db", "LoginFunction": "login", "ProfileFunction": "profile"}
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
    check("ReservedConcurrentExecutions" in props(name), f"{name} has reserved concurrency")

# Routes, each to its own function.
routes = {}
for name in functions:
    for ev in props(name).get("Events", {}).values():
        if ev["Type"] == "HttpApi":
            routes[f'{ev["Properties"]["Method"]} {ev["Properties"]["Path"]}'] = name
check(routes == {"GET /health": "HealthFunction", "HEAD /health": "HealthFunction",
                 "POST /login": "LoginFunction", "GET /profile": "ProfileFunction"}, f"routes {routes}")
check(props("TestDbRoute")["RouteKey"] == "GET /test-db", "GET /test-db route")
check(R["TestDbRoute"]["Condition"] == "TestDbOn" and R["TestDbFunction"]["Condition"] == "TestDbOn", "/test-db can be switched off")
check(props("TestDbRoute")["AuthorizationType"] == {"Fn::If": ["TestDbIam", "AWS_IAM", "NONE"]}, "/test-db can be IAM-only")
check(set(P["TestDbAccess"]["AllowedValues"]) == {"public", "iam", "off"}, "TestDbAccess values")

# Login gets a full vCPU; the others stay small.
check(props("LoginFunction")["MemorySize"] == 1769, "login at 1769 MB")
check(g["MemorySize"] <= 256 and all("MemorySize" not in props(n) for n in functions if n != "LoginFunction"), "others small")

# The signing key: generated at deploy time, at least 32 bytes of entropy.
gen = props("SigningKeySecret")["GenerateSecretString"]
check(R["SigningKeySecret"]["Type"] == "AWS::SecretsManager::Secret", "secret")
check(gen["PasswordLength"] >= 43 and gen.get("ExcludePunctuation") is True, "62-symbol alphabet, >= 256 bits")
for name in ("LoginFunction", "ProfileFunction"):
    env = props(name)["Environment"]["Variables"]
    check(env["SECRET_ARN"] == {"Ref": "SigningKeySecret"}, f"{name} gets SECRET_ARN")
    check({"AWSSecretsManagerGetSecretValuePolicy": {"SecretArn": {"Ref": "SigningKeySecret"}}} in props(name)["Policies"],
          f"{name} may read the signing key")
for name in ("HealthFunction", "TestDbFunction"):
    text = json.dumps(props(name))
    check("SigningKeySecret" not in text, f"{name} may not read the signing key")
check("SECRET_ARN" not in g["Environment"]["Variables"], "no global SECRET_ARN")
for name in functions:
    env = props(name).get("Environment", {}).get("Variables", {})
    check(env.get("SECRET_KEY", "") == "", f"{name}: SECRET_KEY is never given a value in AWS")

# Database parameters.
for p in ("DatabaseSecretArn", "DatabaseHost", "DatabasePort", "DatabaseName", "DatabaseSslMode", "DatabaseSslRootCert", "DatabaseUrl",
          "SubnetIds", "SecurityGroupIds", "CreateSecretsManagerEndpoint", "JwtIssuer", "JwtAudience", "TokenTtlSeconds"):
    check(p in P, f"parameter {p}")
check(P["DatabaseUrl"].get("NoEcho") is True, "DatabaseUrl is NoEcho")
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
for ev in ("login_failed", "login_throttled", "login_succeeded"):
    check(f'{{ $.event = "{ev}" }}' in patterns, f"metric filter {ev}")
check(props("Api5xxAlarm")["MetricName"] == "5xx", "5xx alarm")
check(props("ThrottledLoginsAlarm")["MetricName"] == "LoginThrottled", "throttled-login alarm")

outputs = t["Outputs"]
for o in ("ApiUrl", "SigningKeySecretArn", "HealthFunctionName", "TestDbFunctionName", "LoginFunctionName", "ProfileFunctionName"):
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
for fn in functions:
    role = roles[f"{fn}Role"]
    actions = json.dumps(role["Properties"].get("Policies", []))
    if fn in ("LoginFunction", "ProfileFunction"):
        check("secretsmanager:GetSecretValue" in actions, f"{fn} role reads the key")
    check("secretsmanager:*" not in actions and '"*"' not in actions.replace('"Resource": "*"', ""), f"{fn} role has no wildcards: {actions}")
    if fn in ("HealthFunction", "TestDbFunction"):
        check("SigningKeySecret" not in actions, f"{fn} role cannot read the key")

if failures:
    sys.exit("template check failed:\n- " + "\n- ".join(failures))
print(f"template check: {len(R)} resources, {len(routes) + 1} routes, all promises kept")
