"""Checks template.yaml's wiring against what the service promises: routes to their own
functions, runtime and architecture, build metadata, the generated signing key, least-privilege
policies (each function may read exactly the secrets it uses, and call exactly the Secrets
Manager actions its code calls), the signing algorithm, the issuer the JWT authorizer and
discovery share, key rotation, CORS, login throttling, the /test-db switch, the ALB option,
session settings, the account functions' settings, the data key, the mail queue (who may send to
it, the mailer's trigger, its dead-letter queue and alarm) and SES (who may send, from what),
logs, metric filters, alarms, outputs. Also transforms it with the real SAM
translator so the generated resources are checked too, and finds no dependency cycle in them.

usage: check_template.py TEMPLATE
"""
import json
import pathlib
import re
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
             "RefreshFunction": "refresh", "LogoutFunction": "logout", "PasswordFunction": "password",
             "JwksFunction": "jwks", "RotateKeyFunction": "rotate-key",
             "SignupFunction": "signup", "VerifyEmailFunction": "verify-email",
             "ResendVerificationFunction": "resend-verification", "ForgotPasswordFunction": "forgot-password",
             "ResetPasswordFunction": "reset-password", "ChangeEmailFunction": "change-email", "MailerFunction": "mailer",
             "LoginMfaFunction": "login-mfa", "MfaTotpFunction": "mfa-totp", "MfaTotpVerifyFunction": "mfa-totp-verify",
             "MfaTotpDisableFunction": "mfa-totp-disable", "MfaRecoveryCodesFunction": "mfa-recovery-codes",
             "MfaStatusFunction": "mfa-status",
             "PasskeyRegisterOptionsFunction": "passkey-register-options",
             "PasskeyRegisterFunction": "passkey-register",
             "PasskeyLoginOptionsFunction": "passkey-login-options",
             "PasskeyLoginFunction": "passkey-login",
             "PasskeysFunction": "passkeys"}
# The second-factor functions: each verifies or signs tokens; all but GET /mfa read the data key
# (TOTP secrets sealed under it, recovery codes hashed with it).
mfa_functions = ("LoginMfaFunction", "MfaTotpFunction", "MfaTotpVerifyFunction", "MfaTotpDisableFunction",
                 "MfaRecoveryCodesFunction", "MfaStatusFunction")
mfa_data_key_readers = tuple(n for n in mfa_functions if n != "MfaStatusFunction")
# The passkey functions: login options signs a challenge with the data key and touches neither
# the database nor tokens; login checks that signature and signs tokens; the rest take tokens.
passkey_token_functions = ("PasskeyRegisterOptionsFunction", "PasskeyRegisterFunction", "PasskeyLoginFunction",
                           "PasskeysFunction")
passkey_functions = passkey_token_functions + ("PasskeyLoginOptionsFunction",)
relying_party_functions = ("PasskeyRegisterOptionsFunction", "PasskeyRegisterFunction", "PasskeyLoginOptionsFunction",
                           "PasskeyLoginFunction")
# Functions that sign or verify tokens (and so read the signing key); the rest never see it.
token_functions = ("LoginFunction", "ProfileFunction", "RefreshFunction", "LogoutFunction", "PasswordFunction",
                   "ChangeEmailFunction") + mfa_functions + passkey_token_functions
# Of those, the ones that sign (access::grant_response): a new key version signs there only
# after JWKS_PUBLISH_LEAD_SECONDS.
signing_functions = ("LoginFunction", "RefreshFunction", "PasswordFunction", "LoginMfaFunction", "MfaTotpVerifyFunction",
                     "PasskeyLoginFunction")
# Where the lead is read: the signing functions, and the rotation, which refuses to rotate
# while AWSCURRENT is younger than it.
lead_functions = signing_functions + ("RotateKeyFunction",)
# Functions that read the keys but no database (jwks, rotate-key).
keys_only_functions = ("JwksFunction", "RotateKeyFunction")
# Functions with no database: no pool, no database secret, outside the VPC (the keys-only ones,
# and any route that needs no part at all, auth_shared::state::NoState).
no_database_functions = keys_only_functions + ("PasskeyLoginOptionsFunction",)
# Functions whose code depends on TOKEN_SIGNING_ALG.
alg_functions = token_functions + keys_only_functions
# Functions that state JWT_ISSUER: in tokens (iss), in discovery (jwks).
issuer_functions = token_functions + ("JwksFunction",)
# The one issuer expression: https://<ApiDomainName> when there is a domain, else JwtIssuer. It
# refers to parameters only, never to HttpApi (a function's environment that did would close
# a cycle: HttpApi's routes refer to the functions).
ISSUER = {"Fn::If": ["HasApiDomain", {"Fn::Sub": "https://${ApiDomainName}"}, {"Ref": "JwtIssuer"}]}
# Functions that open or check sessions, and so get the session settings.
session_functions = token_functions
# Functions that hash passwords get a full vCPU; the others stay small.
hashing_functions = ("LoginFunction", "PasswordFunction", "SignupFunction", "VerifyEmailFunction", "ResetPasswordFunction",
                     "ChangeEmailFunction", "MfaTotpFunction", "PasskeyRegisterOptionsFunction")
# Reserved concurrency parameter (and its condition) of each function.
# (jwks and rotate-key hold no database connection: nothing to cap.)
reserve = {"HealthFunction": "Health", "TestDbFunction": "TestDb", "LoginFunction": "Login", "ProfileFunction": "Profile",
           "RefreshFunction": "Refresh", "LogoutFunction": "Logout", "PasswordFunction": "Password",
           "SignupFunction": "Signup", "VerifyEmailFunction": "VerifyEmail", "ResendVerificationFunction": "ResendVerification",
           "ForgotPasswordFunction": "ForgotPassword", "ResetPasswordFunction": "ResetPassword", "ChangeEmailFunction": "ChangeEmail",
           "MailerFunction": "Mailer", **{n: n.removesuffix("Function") for n in mfa_functions + passkey_functions}}
# The secrets each function may read, by the logical name that refers to them (jwks: the public
# keys' secret, with RS256 only; rotate-key: with the actions of its own statements, below).
secrets_of = {name: ({"SigningKeySecret", "DatabaseSecretArn"} if name in token_functions else {"DatabaseSecretArn"})
              for name in functions}
secrets_of["JwksFunction"] = {"SigningPublicKeySecret"}
secrets_of["RotateKeyFunction"] = {"SigningKeySecret", "SigningPublicKeySecret"}
# Who may read the data key (it keys the hashes of mailed codes and links): the functions that
# check a code (verify-email, reset-password) and the mailer, which mints them.
data_key_readers = ("VerifyEmailFunction", "ResetPasswordFunction", "MailerFunction", "PasskeyLoginFunction",
                    "PasskeyLoginOptionsFunction") + mfa_data_key_readers
for name in data_key_readers:
    secrets_of[name] = {"DataKeySecret", "DatabaseSecretArn"} | ({"SigningKeySecret"} if name in token_functions else set())
secrets_of["PasskeyLoginOptionsFunction"] = {"DataKeySecret"}
# The account functions and the mailer: every account setting (AccountConfig::from_env).
account_functions = ("SignupFunction", "VerifyEmailFunction", "ResendVerificationFunction", "ForgotPasswordFunction",
                     "ResetPasswordFunction", "ChangeEmailFunction", "MailerFunction")
# Who may put jobs on the mail queue (MAIL_QUEUE_URL, sqs:SendMessage on MailQueue): the routes
# that mail, the code-checking ones and password for their security notices, and login (an
# unverified account's verification again). Not the mailer: it only reads the queue.
mail_senders = ("SignupFunction", "ResendVerificationFunction", "ForgotPasswordFunction", "VerifyEmailFunction",
                "ResetPasswordFunction", "ChangeEmailFunction", "LoginFunction", "PasswordFunction",
                "PasskeyRegisterFunction", "PasskeysFunction", "MfaTotpVerifyFunction", "MfaTotpDisableFunction")
# The settings every account function reads, by parameter (shared/src/accounts/mod.rs).
account_vars = {"SIGNUP_MODE": "SignUpMode", "SIGNUP_ALLOWED_DOMAINS": "SignUpAllowedDomains",
                "REQUIRE_VERIFIED_EMAIL": "RequireVerifiedEmail", "VERIFY_TTL_SECONDS": "VerifyTtlSeconds",
                "RESET_TTL_SECONDS": "ResetTtlSeconds", "APP_NAME": "AppName", "EMAIL_LINK_BASE_URL": "EmailLinkBaseUrl"}
# Of those, what login and password read (an unverified account's password fails as a wrong one).
login_account_vars = ("REQUIRE_VERIFIED_EMAIL",)
login_functions = ("LoginFunction", "PasswordFunction")
# The mailer's SES grant: SendEmail on the sender's address and domain identities, from EmailFrom only.
SES_RESOURCES = [{"Fn::Sub": "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/${EmailFrom}"},
                 {"Fn::Sub": ["arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/${Domain}",
                              {"Domain": {"Fn::Select": [1, {"Fn::Split": ["@", {"Ref": "EmailFrom"}]}]}}]}]
SES_CONDITION = {"StringEquals": {"ses:FromAddress": {"Ref": "EmailFrom"}}}
MAIL_QUEUE_ARN = {"Fn::GetAtt": ["MailQueue", "Arn"]}
# What Lambda's SQS polling needs of the mailer's role, on MailQueue alone.
SQS_CONSUME = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}
# Who may read the signing key (the private keys) at all: the functions that sign or verify, and
# the rotation function. Not jwks: it publishes from the public keys' secret.
key_readers = set(token_functions) | {"RotateKeyFunction"}
# Who may read the public keys' secret: jwks, which publishes it, and rotate-key, which writes it.
public_key_readers = {"JwksFunction", "RotateKeyFunction"}
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
    if name not in reserve:
        check("ReservedConcurrentExecutions" not in props(name), f"{name} reserves nothing (no database connection)")
        continue
    # Reserved concurrency from its own parameter, left unreserved when that is 0.
    stem = reserve[name]
    check(props(name).get("ReservedConcurrentExecutions")
          == {"Fn::If": [f"Reserve{stem}", {"Ref": f"{stem}ReservedConcurrency"}, {"Ref": "AWS::NoValue"}]},
          f"{name} reserves {stem}ReservedConcurrency")
    check(t["Conditions"].get(f"Reserve{stem}") == {"Fn::Not": [{"Fn::Equals": [{"Ref": f"{stem}ReservedConcurrency"}, 0]}]},
          f"condition Reserve{stem}")
    check(P.get(f"{stem}ReservedConcurrency", {}).get("Type") == "Number", f"parameter {stem}ReservedConcurrency")
for name in functions:
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
                   "POST /refresh": "RefreshFunction", "POST /logout": "LogoutFunction", "POST /password": "PasswordFunction",
                   "GET /.well-known/jwks.json": "JwksFunction", "GET /.well-known/openid-configuration": "JwksFunction",
                   "POST /signup": "SignupFunction", "POST /verify-email": "VerifyEmailFunction",
                   "POST /verify-email/resend": "ResendVerificationFunction", "POST /password/forgot": "ForgotPasswordFunction",
                   "POST /password/reset": "ResetPasswordFunction", "POST /email": "ChangeEmailFunction",
                   "POST /login/mfa": "LoginMfaFunction", "POST /mfa/totp": "MfaTotpFunction",
                   "POST /mfa/totp/verify": "MfaTotpVerifyFunction", "POST /mfa/totp/disable": "MfaTotpDisableFunction",
                   "POST /mfa/recovery-codes": "MfaRecoveryCodesFunction", "GET /mfa": "MfaStatusFunction",
                   "POST /passkeys/register/options": "PasskeyRegisterOptionsFunction",
                   "POST /passkeys/register": "PasskeyRegisterFunction",
                   "POST /passkeys/login/options": "PasskeyLoginOptionsFunction",
                   "POST /passkeys/login": "PasskeyLoginFunction",
                   "GET /passkeys": "PasskeysFunction", "DELETE /passkeys/{id}": "PasskeysFunction"}
check(routes == expected_routes, f"routes {routes}")
check("Events" not in props("RotateKeyFunction"), "rotate-key has no route: only Secrets Manager invokes it")
check("Events" not in props("MailerFunction"), "the mailer has no route and no SAM event: MailerEventSource invokes it")
check(props("TestDbRoute")["RouteKey"] == "GET /test-db", "GET /test-db route")
check(R["TestDbRoute"]["Condition"] == "TestDbOn" and R["TestDbFunction"]["Condition"] == "TestDbOn", "/test-db can be switched off")
check(props("TestDbRoute")["AuthorizationType"] == {"Fn::If": ["TestDbIam", "AWS_IAM", "NONE"]}, "/test-db can be IAM-only")
check(set(P["TestDbAccess"]["AllowedValues"]) == {"public", "iam", "off"}, "TestDbAccess values")

# Login and password hash passwords, rotate-key makes RSA keys: a full vCPU; the others stay small.
full_cpu = hashing_functions + ("RotateKeyFunction",)
for name in full_cpu:
    check(props(name).get("MemorySize") == 1769, f"{name} at 1769 MB")
check(g["MemorySize"] <= 256 and all("MemorySize" not in props(n) for n in functions if n not in full_cpu), "others small")
# An RSA key and four Secrets Manager calls may take longer than a request's budget.
check(props("RotateKeyFunction").get("Timeout", g["Timeout"]) >= 30, "rotate-key has time for a key and its calls")

# The signing key: with HS256 generated at deploy time, at least 32 bytes of entropy; with RS256
# no value at all (a template cannot make an RSA key): the rotation at deploy makes the first.
gen_if = props("SigningKeySecret").get("GenerateSecretString", {}).get("Fn::If", [None, None, {}])
gen = gen_if[2]
check(R["SigningKeySecret"]["Type"] == "AWS::SecretsManager::Secret", "secret")
check(gen_if[:2] == ["IsRs256", {"Ref": "AWS::NoValue"}], "RS256: the secret starts empty, the rotation makes the key")
check(gen.get("PasswordLength", 0) >= 43 and gen.get("ExcludePunctuation") is True, "62-symbol alphabet, >= 256 bits")
check("SecretString" not in props("SigningKeySecret"), "no key written into the template")
check(t["Conditions"].get("IsRs256") == {"Fn::Equals": [{"Ref": "TokenSigningAlg"}, "RS256"]}, "condition IsRs256")
# The public keys' secret: RS256 only, created with no value (rotate-key writes every version).
pub = R.get("SigningPublicKeySecret", {})
check(pub.get("Type") == "AWS::SecretsManager::Secret" and pub.get("Condition") == "IsRs256", "the public keys' secret, with RS256 only")
check(not {"GenerateSecretString", "SecretString"} & set(pub.get("Properties", {})), "the public keys' secret starts with no value")
check(t["Outputs"].get("SigningPublicKeySecretArn", {}).get("Condition") == "IsRs256"
      and t["Outputs"]["SigningPublicKeySecretArn"].get("Value") == {"Ref": "SigningPublicKeySecret"}, "output SigningPublicKeySecretArn")
check(P["TokenSigningAlg"].get("Default") == "HS256" and sorted(P["TokenSigningAlg"].get("AllowedValues", [])) == ["HS256", "RS256"],
      "TokenSigningAlg: HS256 by default, or RS256")
lead = P.get("JwksPublishLeadSeconds", {})
check(lead.get("Type") == "Number" and int(lead.get("Default", -1)) == 7500, "JwksPublishLeadSeconds defaults to 7500")
for name in token_functions:
    env = props(name)["Environment"]["Variables"]
    check(env.get("SECRET_ARN") == {"Ref": "SigningKeySecret"}, f"{name} gets SECRET_ARN")
    for var, param in (("JWT_AUDIENCE", "JwtAudience"), ("TOKEN_TTL_SECONDS", "TokenTtlSeconds")):
        check(env.get(var) == {"Ref": param}, f"{name} gets {var}")
for name in functions:
    env = props(name).get("Environment", {}).get("Variables", {})
    check((env.get("TOKEN_SIGNING_ALG") == {"Ref": "TokenSigningAlg"}) == (name in alg_functions),
          f"{name}: TOKEN_SIGNING_ALG exactly where the code reads it")
    check((env.get("JWT_ISSUER") == ISSUER) == (name in issuer_functions) and (name in issuer_functions or "JWT_ISSUER" not in env),
          f"{name}: JWT_ISSUER is the one issuer expression exactly where tokens or discovery state it")
    check((env.get("JWKS_PUBLISH_LEAD_SECONDS") == {"Ref": "JwksPublishLeadSeconds"}) == (name in lead_functions)
          and (name in lead_functions or "JWKS_PUBLISH_LEAD_SECONDS" not in env),
          f"{name}: JWKS_PUBLISH_LEAD_SECONDS exactly where a key is chosen to sign or rotated")
    if name not in key_readers:
        check("SigningKeySecret" not in json.dumps(props(name)), f"{name} may not read the signing key")
    if name not in public_key_readers:
        check("SigningPublicKeySecret" not in json.dumps(props(name)), f"{name} has no use for the public keys' secret")
for name in no_database_functions:
    env = props(name)["Environment"]["Variables"]
    check(props(name).get("VpcConfig") == {"Ref": "AWS::NoValue"} and env.get("DATABASE_URL") == "",
          f"{name}: no database, outside the VPC, no database URL")
# jwks and rotate-key find the public keys' secret in SIGNING_PUBLIC_SECRET_ARN (RS256; empty with
# HS256, when the secret does not exist); jwks is not told where the signing secret is.
PUBLIC_ARN = {"Fn::If": ["IsRs256", {"Ref": "SigningPublicKeySecret"}, ""]}
for name in ("JwksFunction", "RotateKeyFunction"):
    check(props(name)["Environment"]["Variables"].get("SIGNING_PUBLIC_SECRET_ARN") == PUBLIC_ARN,
          f"{name} gets SIGNING_PUBLIC_SECRET_ARN")
check("SECRET_ARN" not in props("JwksFunction")["Environment"]["Variables"], "jwks gets no SECRET_ARN")
check("SIGNING_PUBLIC_SECRET_ARN" not in g["Environment"]["Variables"], "no global SIGNING_PUBLIC_SECRET_ARN")
check(props("JwksFunction")["Environment"]["Variables"].get("JWT_AUDIENCE") == {"Ref": "JwtAudience"}, "jwks gets JWT_AUDIENCE")

# The issuer: discovery's `issuer` is JWT_ISSUER (functions/jwks, config.rs), the authorizer's is
# the same expression, so API Gateway finds its discovery document where the tokens say.
root_dir = pathlib.Path(path).resolve().parent
jwks_src = (root_dir / "functions/jwks/src/lib.rs").read_text()
config_src = (root_dir / "shared/src/config.rs").read_text()
check("let issuer = state.tokens.issuer.as_str();" in jwks_src and "jwks_uri: format!(\"{}{JWKS_PATH}\", issuer" in jwks_src,
      "discovery states JWT_ISSUER as issuer and jwks_uri under it")
check(re.search(r'issuer: env\.optional\("JWT_ISSUER"\)', config_src) is not None, "the issuer is read from JWT_ISSUER")
auth = R.get("JwtAuthorizer", {})
check(auth.get("Type") == "AWS::ApiGatewayV2::Authorizer" and auth.get("Condition") == "IsRs256", "a JWT authorizer, with RS256 only")
ap = auth.get("Properties", {})
check(ap.get("AuthorizerType") == "JWT" and ap.get("ApiId") == {"Ref": "HttpApi"}, "the authorizer is a JWT authorizer of HttpApi")
check(ap.get("IdentitySource") == ["$request.header.Authorization"], "the authorizer reads the bearer token")
check(ap.get("JwtConfiguration", {}).get("Issuer") == ISSUER, "the authorizer's issuer is discovery's (the same expression as JWT_ISSUER)")
check(ap.get("JwtConfiguration", {}).get("Audience") == [{"Ref": "JwtAudience"}], "the authorizer's audience is JWT_AUDIENCE")
check(t["Outputs"].get("JwtIssuer", {}).get("Value") == ISSUER, "output JwtIssuer is the same issuer")
check(t["Outputs"].get("JwtAuthorizerId", {}).get("Condition") == "IsRs256", "output JwtAuthorizerId with RS256")
# The custom domain serves the API at its root, so https://<domain>/.well-known/... is discovery.
check(t["Conditions"].get("HasApiDomain") == {"Fn::Not": [{"Fn::Equals": [{"Ref": "ApiDomainName"}, ""]}]}, "condition HasApiDomain")
check(R["ApiDomain"].get("Condition") == "HasApiDomain" and props("ApiDomain")["DomainName"] == {"Ref": "ApiDomainName"}, "the domain")
check(props("ApiDomain")["DomainNameConfigurations"][0]["CertificateArn"] == {"Ref": "ApiCertificateArn"}, "the domain's certificate")
mapping = props("ApiDomainMapping")
check(R["ApiDomainMapping"].get("Condition") == "HasApiDomain" and mapping["ApiId"] == {"Ref": "HttpApi"}
      and mapping["DomainName"] == {"Ref": "ApiDomain"} and not mapping.get("ApiMappingKey"), "HttpApi mapped at the domain's root")
# RS256 without an https issuer, or without a rotation to make its key, is refused at deploy.
rule = t.get("Rules", {}).get("Rs256NeedsAnHttpsIssuer", {})
check(rule.get("RuleCondition") == {"Fn::Equals": [{"Ref": "TokenSigningAlg"}, "RS256"]} and len(rule.get("Assertions", [])) == 2,
      "a rule: RS256 needs an https issuer and the rotation schedule")

# Rotation: Secrets Manager invokes rotate-key for the signing secret, on the schedule and once at
# deploy (for RS256 that rotation makes the first key), after its permission exists.
rot = R.get("SigningKeyRotation", {})
rp = rot.get("Properties", {})
check(rot.get("Type") == "AWS::SecretsManager::RotationSchedule" and rot.get("Condition") == "HasRotation", "a rotation schedule")
check(rp.get("SecretId") == {"Ref": "SigningKeySecret"}, "the schedule rotates the signing secret")
check(rp.get("RotationLambdaARN") == {"Fn::GetAtt": ["RotateKeyFunction", "Arn"]}, "the schedule points at the rotation function")
check(rp.get("RotateImmediatelyOnUpdate") is True, "rotates at deploy (the first RS256 key)")
check(rp.get("RotationRules") == {"AutomaticallyAfterDays": {"Ref": "RotationDays"}}, "every RotationDays days")
check(rot.get("DependsOn") in ("RotateKeyPermission", ["RotateKeyPermission"]), "the schedule waits for the invoke permission")
check(t["Conditions"].get("HasRotation") == {"Fn::Not": [{"Fn::Equals": [{"Ref": "RotationDays"}, 0]}]}, "RotationDays 0 = no schedule")
perm = props("RotateKeyPermission")
check(perm["Principal"] == "secretsmanager.amazonaws.com" and perm["Action"] == "lambda:InvokeFunction"
      and perm["FunctionName"] == {"Fn::GetAtt": ["RotateKeyFunction", "Arn"]}, "Secrets Manager may invoke rotate-key")
check(perm.get("SourceArn") == {"Ref": "SigningKeySecret"} and "Condition" not in R["RotateKeyPermission"],
      "for the signing secret only")
fails = [n for n, r in R.items() if r["Type"] == "AWS::CloudWatch::Alarm" and props(n).get("MetricName") == "Errors"
         and props(n).get("Dimensions") == [{"Name": "FunctionName", "Value": {"Ref": "RotateKeyFunction"}}]]
check(len(fails) == 1, "an alarm on a failed rotation step")


# Least privilege, as written: every policy is a GetSecretValue on one named secret, the database
# secret's only when there is one, and each function names exactly the secrets it uses.
def policy_secrets(policy, name):
    """The secrets one template policy entry grants, or None when it is not of the allowed forms."""
    if isinstance(policy, dict) and set(policy) == {"AWSSecretsManagerGetSecretValuePolicy"}:
        ref = policy["AWSSecretsManagerGetSecretValuePolicy"].get("SecretArn", {})
        return {ref["Ref"]} if isinstance(ref, dict) and set(ref) == {"Ref"} else None
    if isinstance(policy, dict) and set(policy) == {"Fn::If"}:
        cond, then, otherwise = policy["Fn::If"]
        granted = policy_secrets(then, name)
        # The database secret when there is one; jwks and rotate-key use the public keys' secret
        # only with RS256 (it exists only then).
        allowed = {"HasDatabaseSecret": {"DatabaseSecretArn"}}
        if name in ("JwksFunction", "RotateKeyFunction"):
            allowed["IsRs256"] = {"SigningPublicKeySecret"}
        ok = otherwise == {"Ref": "AWS::NoValue"} and granted is not None and allowed.get(cond) == granted
        return granted if ok else None
    # rotate-key's own statements, their actions checked against its code below.
    if name == "RotateKeyFunction" and isinstance(policy, dict) and set(policy) == {"Statement"}:
        (st,) = policy["Statement"]
        return {st["Resource"]["Ref"]} if st.get("Effect") == "Allow" and set(st["Resource"]) == {"Ref"} else None
    return None


def actions_of(st):
    return st["Action"] if isinstance(st["Action"], list) else [st["Action"]]


def mail_grant(st):
    """What one IAM statement grants of the mail path: "send" (SendMessage on MailQueue),
    "consume" (the SQS polling on MailQueue), "ses" (SendEmail from EmailFrom on its identities),
    or None for any other statement (a secret's, or one of no allowed form)."""
    acts = set(actions_of(st))
    if st.get("Effect") != "Allow":
        return None
    if acts == {"sqs:SendMessage"} and st.get("Resource") == MAIL_QUEUE_ARN and "Condition" not in st:
        return "send"
    if acts == SQS_CONSUME and len(actions_of(st)) == 3 and st.get("Resource") == MAIL_QUEUE_ARN and "Condition" not in st:
        return "consume"
    if acts == {"ses:SendEmail"} and st.get("Resource") == SES_RESOURCES and st.get("Condition") == SES_CONDITION:
        return "ses"
    return None


def expected_mail_grants(name):
    return sorted((["send"] if name in mail_senders else []) + (["consume", "ses"] if name == "MailerFunction" else []))


for name in functions:
    granted = set()
    mail = []
    for policy in props(name).get("Policies", []):
        if isinstance(policy, dict) and set(policy) == {"Statement"} and len(policy["Statement"]) == 1 \
                and mail_grant(policy["Statement"][0]):
            mail.append(mail_grant(policy["Statement"][0]))
            continue
        secrets = policy_secrets(policy, name)
        check(secrets is not None, f"{name}: policy of an unexpected form {json.dumps(policy)}")
        granted |= secrets or set()
    check(granted == secrets_of[name], f"{name} may read exactly {sorted(secrets_of[name])}, not {sorted(granted)}")
    check(sorted(mail) == expected_mail_grants(name),
          f"{name}: of the mail path, exactly {expected_mail_grants(name)} (as written), not {sorted(mail)}")
check("SECRET_ARN" not in g["Environment"]["Variables"], "no global SECRET_ARN")
check(props("JwksFunction")["Policies"] == [{"Fn::If": ["IsRs256", {"AWSSecretsManagerGetSecretValuePolicy": {
    "SecretArn": {"Ref": "SigningPublicKeySecret"}}}, {"Ref": "AWS::NoValue"}]}],
      "jwks: GetSecretValue on the public keys' secret with RS256 only, nothing with HS256")


# The Secrets Manager actions each function's code calls, read from the code: the SDK operation
# inside each SecretsClient method (shared/src/secrets.rs), then the methods a function's code
# calls. The token functions read keys through shared/src/signing/keys.rs only, jwks through
# shared/src/signing/public_keys.rs only (which reads the public keys' secret, never the signing one).
def secrets_client_ops():
    src = (root_dir / "shared/src/secrets.rs").read_text()
    ops = {}
    for m in re.finditer(r"pub async fn (\w+)\b(.*?)(?=pub async fn |\nfn |\Z)", src, re.S):
        calls = re.findall(r"\.client\s*\.(\w+)\(\)", m.group(2))
        if calls:
            ops[m.group(1)] = {"secretsmanager:" + "".join(w.title() for w in c.split("_")) for c in calls}
    return ops


def actions_called(*files, receiver="client"):
    ops = secrets_client_ops()
    called = set()
    for f in files:
        for method in re.findall(rf"\b{receiver}\.(\w+)\(", (root_dir / f).read_text()):
            called |= ops.get(method, set())
    return called


code_actions = {"RotateKeyFunction": actions_called("functions/rotate-key/src/lib.rs"),
                "JwksFunction": actions_called("shared/src/signing/public_keys.rs", "functions/jwks/src/lib.rs")}
# The data key (shared/src/data_key.rs, through its SecretsClient `secrets`): the current version by
# stage, older ones by version id; both GetSecretValue, never DescribeSecret.
data_key_src = (root_dir / "shared/src/data_key.rs").read_text()
data_key_actions = actions_called("shared/src/data_key.rs", receiver="secrets")
check(data_key_actions == {"secretsmanager:GetSecretValue"} and 'secrets.get(arn, "AWSCURRENT")' in data_key_src
      and "secrets.get_version_any_stage(arn, id)" in data_key_src,
      f"the data key is read by GetSecretValue only (AWSCURRENT, and by version id), not {sorted(data_key_actions)}")
check('env.optional("DATA_KEY_SECRET_ARN")' in data_key_src and 'env.optional("DATA_KEY")' in data_key_src,
      "the data key is found in DATA_KEY_SECRET_ARN (DATA_KEY locally)")
# jwks's code never loads the signing key from Secrets Manager: its state (shared/src/state.rs,
# PublicKeysState) reads SIGNING_PUBLIC_SECRET_ARN through public_keys.rs, which refuses SECRET_ARN.
public_src = (root_dir / "shared/src/signing/public_keys.rs").read_text()
state_src = (root_dir / "shared/src/state.rs").read_text()
jwks_state = state_src[state_src.index("pub struct PublicKeysState"):state_src.index("pub struct HashState")]
check(not any(re.search(r"\bKeys::load\b|\bKeySource::require_from_env\b|\bKeySource::SecretsManager \{ arn", src)
              for src in (public_src, jwks_src, jwks_state)),
      "jwks's code never loads the signing key from Secrets Manager")
check('pub const PUBLIC_SECRET_VAR: &str = "SIGNING_PUBLIC_SECRET_ARN";' in public_src and 'env.optional("SECRET_ARN")' in public_src
      and "PublicKeySource::from_env(env)" in jwks_state, "jwks reads SIGNING_PUBLIC_SECRET_ARN and refuses SECRET_ARN")
check(code_actions["RotateKeyFunction"] == {"secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue",
                                            "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage"},
      f"rotate-key's code calls {sorted(code_actions['RotateKeyFunction'])}")
check(code_actions["JwksFunction"] == {"secretsmanager:GetSecretValue"}, f"jwks's code calls {sorted(code_actions['JwksFunction'])}")
rotate_policies = props("RotateKeyFunction")["Policies"]
check(len(rotate_policies) == 2, "rotate-key: one statement on the signing secret, one on the public keys' secret (RS256)")
(rotate_statement,) = rotate_policies[0]["Statement"]
check(rotate_statement["Resource"] == {"Ref": "SigningKeySecret"}, "rotate-key's first statement: the signing secret")
(public_statement,) = rotate_policies[1]["Fn::If"][1]["Statement"]
check(public_statement["Resource"] == {"Ref": "SigningPublicKeySecret"}, "rotate-key's second statement: the public keys' secret")
for st in (rotate_statement, public_statement):
    check(set(st["Action"]) == code_actions["RotateKeyFunction"] and len(st["Action"]) == 4,
          f"rotate-key may call exactly what its code calls, not {st['Action']}")
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

# Passkeys: the relying party (WebAuthnRpId, WebAuthnOrigins) reaches exactly the functions that
# build one; the parameters have no default an operator could deploy by mistake for another app.
for name in functions:
    env = props(name).get("Environment", {}).get("Variables", {})
    wanted = name in relying_party_functions
    for var, param in (("WEBAUTHN_RP_ID", "WebAuthnRpId"), ("WEBAUTHN_ORIGINS", "WebAuthnOrigins")):
        check((env.get(var) == {"Ref": param}) == wanted and (wanted or var not in env),
              f"{name}: {var} (from {param}) exactly where a relying party is built")
for param in ("WebAuthnRpId", "WebAuthnOrigins"):
    check(t["Parameters"][param].get("Default") == "", f"{param} names no domain by default")

# Accounts and mail. The settings: parameters with the code's defaults and ranges, each reaching
# exactly the functions that read it.
accounts_src = (root_dir / "shared/src/accounts/mod.rs").read_text()
for var, param in account_vars.items():
    for name in functions:
        env = props(name).get("Environment", {}).get("Variables", {})
        wanted = (name in account_functions or (name in login_functions and var in login_account_vars)
                  or (name in ("MfaTotpFunction",) + relying_party_functions and var == "APP_NAME"))
        check((env.get(var) == {"Ref": param}) == wanted and (wanted or var not in env),
              f"{name}: {var} (from {param}) exactly where the code reads it")
    check(var not in g["Environment"]["Variables"], f"no global {var}")
    check(f'"{var}"' in accounts_src, f"the code reads {var}")
for param, var in (("VerifyTtlSeconds", "VERIFY_TTL_SECONDS"), ("ResetTtlSeconds", "RESET_TTL_SECONDS")):
    m = re.search(rf'env\.integer\("{var}", ([0-9_]+), ([0-9_]+), ([0-9_]+)\)', accounts_src)
    spec = P.get(param, {})
    default, low, high = (int(x.replace("_", "")) for x in m.groups()) if m else (None, None, None)
    check(m is not None and spec.get("Type") == "Number" and int(spec.get("Default", -1)) == default
          and int(spec.get("MinValue", -1)) == low and int(spec.get("MaxValue", -1)) == high,
          f"parameter {param}: the code's default and range for {var}")
check(P.get("SignUpMode", {}).get("Default") == "open" and sorted(P["SignUpMode"].get("AllowedValues", [])) == ["closed", "domains", "open"],
      "SignUpMode: open by default, or domains, closed")
check(P.get("SignUpAllowedDomains", {}).get("Default") == "", "SignUpAllowedDomains empty by default")
check(P.get("RequireVerifiedEmail", {}).get("Default") == "true" and sorted(P["RequireVerifiedEmail"].get("AllowedValues", [])) == ["false", "true"],
      "RequireVerifiedEmail: true by default")
check(P.get("AppName", {}).get("Default") == "auth-service" and int(P["AppName"].get("MaxLength", 999)) <= 100, "AppName: auth-service, at most 100")
# The sender: a bare address (it is an IAM resource too, where * and ? are wildcards), no default.
email_from = P.get("EmailFrom", {})
pattern = re.compile(email_from.get("AllowedPattern", ""))
check("Default" not in email_from and email_from.get("AllowedPattern")
      and pattern.fullmatch("no-reply@mail.example.com") is not None
      and not any(pattern.fullmatch(bad) for bad in ("*@example.com", "a?@example.com", "App <a@example.com>", "a@example", "a@b@example.com", "")),
      "EmailFrom: required, a bare address without wildcards")
link = P.get("EmailLinkBaseUrl", {})
link_pattern = re.compile(link.get("AllowedPattern", "^$"))
check("Default" not in link and link_pattern.fullmatch("https://app.example.com/account") is not None
      and not any(link_pattern.fullmatch(bad) for bad in ("http://app.example.com/", "https://app.example.com/#x", "")),
      "EmailLinkBaseUrl: required, an https URL without a fragment")
for name in functions:
    env = props(name).get("Environment", {}).get("Variables", {})
    check((env.get("MAIL_QUEUE_URL") == {"Ref": "MailQueue"}) == (name in mail_senders) and (name in mail_senders or "MAIL_QUEUE_URL" not in env),
          f"{name}: MAIL_QUEUE_URL exactly where jobs are queued")
    check((env.get("DATA_KEY_SECRET_ARN") == {"Ref": "DataKeySecret"}) == (name in data_key_readers)
          and (name in data_key_readers or "DATA_KEY_SECRET_ARN" not in env), f"{name}: DATA_KEY_SECRET_ARN exactly where the data key is read")
    check(env.get("DATA_KEY", "") == "" and (name in data_key_readers or "DATA_KEY" not in env), f"{name}: DATA_KEY is never given a value in AWS")
    check((env.get("EMAIL_FROM") == {"Ref": "EmailFrom"}) == (name == "MailerFunction") and (name == "MailerFunction" or "EMAIL_FROM" not in env),
          f"{name}: EMAIL_FROM on the mailer only")
for var in ("MAIL_QUEUE_URL", "DATA_KEY_SECRET_ARN", "DATA_KEY", "EMAIL_FROM"):
    check(var not in g["Environment"]["Variables"], f"no global {var}")
# Second factors: MFA_POLICY and MFA_TOKEN_TTL_SECONDS where the second step starts (login), with
# the code's default and range.
mfa_src = (root_dir / "shared/src/mfa/mod.rs").read_text()
m = re.search(r'env\.integer\("MFA_TOKEN_TTL_SECONDS", ([0-9_]+), ([0-9_]+), ([0-9_]+)\)', mfa_src)
spec = P.get("MfaTokenTtlSeconds", {})
check(m is not None and spec.get("Type") == "Number"
      and (int(spec.get("Default", -1)), int(spec.get("MinValue", -1)), int(spec.get("MaxValue", -1)))
      == tuple(int(x.replace("_", "")) for x in m.groups()), "parameter MfaTokenTtlSeconds: the code's default and range")
check(P.get("MfaPolicy", {}).get("Default") == "optional" and sorted(P["MfaPolicy"].get("AllowedValues", [])) == ["optional", "required"],
      "MfaPolicy: optional by default, or required")
for name in functions:
    env = props(name).get("Environment", {}).get("Variables", {})
    for var, param in (("MFA_POLICY", "MfaPolicy"), ("MFA_TOKEN_TTL_SECONDS", "MfaTokenTtlSeconds")):
        check((env.get(var) == {"Ref": param}) == (name == "LoginFunction") and (name == "LoginFunction" or var not in env),
              f"{name}: {var} exactly where a login's second step starts")
groups = {grp["Label"]["default"]: grp["Parameters"] for grp in t["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]}
check(set(groups.get("Accounts and mail", [])) == {"EmailFrom", "EmailLinkBaseUrl", *account_vars.values()}, "the Accounts and mail parameter group")
check(all(f"{stem}ReservedConcurrency" in groups.get("Capacity and operations", []) for stem in reserve.values()),
      "every reserved concurrency in Capacity and operations")
# The data key: its own secret, generated at deploy (as the HS256 key), no value in the template.
dk = R.get("DataKeySecret", {})
dk_gen = dk.get("Properties", {}).get("GenerateSecretString", {})
check(dk.get("Type") == "AWS::SecretsManager::Secret" and "Condition" not in dk, "the data key's secret")
check(dk_gen.get("PasswordLength", 0) >= 43 and dk_gen.get("ExcludePunctuation") is True and "SecretString" not in dk.get("Properties", {}),
      "the data key: generated at deploy, 62-symbol alphabet, >= 256 bits")
# The queue: encrypted, redriven to the dead-letter queue after five receives, hidden long enough
# for the mailer to finish a batch (six times its timeout, as Lambda's SQS polling asks).
queue = R.get("MailQueue", {})
qp = queue.get("Properties", {})
dlq = R.get("MailDeadLetterQueue", {})
check(queue.get("Type") == "AWS::SQS::Queue" and qp.get("SqsManagedSseEnabled") is True, "MailQueue: an SQS queue, encrypted")
check(qp.get("RedrivePolicy") == {"deadLetterTargetArn": {"Fn::GetAtt": ["MailDeadLetterQueue", "Arn"]}, "maxReceiveCount": 5},
      "MailQueue redrives to MailDeadLetterQueue after five receives")
mailer_timeout = props("MailerFunction").get("Timeout", g["Timeout"])
check(int(qp.get("VisibilityTimeout", 30)) >= 6 * mailer_timeout, f"MailQueue's visibility timeout is at least 6 x the mailer's {mailer_timeout} s")
check(dlq.get("Type") == "AWS::SQS::Queue" and dlq.get("Properties", {}).get("SqsManagedSseEnabled") is True
      and int(dlq.get("Properties", {}).get("MessageRetentionPeriod", 0)) == 1209600, "MailDeadLetterQueue: encrypted, keeps 14 days")
# A job in the dead-letter queue is a mail never sent: alarm at the first.
dlq_alarms = [n for n, r in R.items() if r["Type"] == "AWS::CloudWatch::Alarm" and props(n).get("Namespace") == "AWS/SQS"
              and props(n).get("MetricName") == "ApproximateNumberOfMessagesVisible"
              and props(n).get("Dimensions") == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["MailDeadLetterQueue", "QueueName"]}}]]
check(len(dlq_alarms) == 1, "an alarm on the mail dead-letter queue")
for n in dlq_alarms:
    a = props(n)
    check((a.get("ComparisonOperator"), a.get("Threshold")) in (("GreaterThanThreshold", 0), ("GreaterThanOrEqualToThreshold", 1)),
          f"{n} fires on one message")
    check(a.get("AlarmActions") == {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}, f"{n} notifies AlarmTopicArn")
# The VPC endpoints the mail path needs from private subnets, optional as Secrets Manager's.
check(t["Conditions"].get("CreateMailEndpoint") == {"Fn::And": [{"Condition": "HasVpc"}, {"Fn::Equals": [{"Ref": "CreateMailEndpoints"}, "true"]}]},
      "condition CreateMailEndpoint")
for ep, service in (("SqsEndpoint", "sqs"), ("SesEndpoint", "email")):
    e = R.get(ep, {})
    check(e.get("Type") == "AWS::EC2::VPCEndpoint" and e.get("Condition") == "CreateMailEndpoint"
          and e["Properties"].get("ServiceName") == {"Fn::Sub": f"com.amazonaws.${{AWS::Region}}.{service}"}
          and e["Properties"].get("VpcEndpointType") == "Interface" and e["Properties"].get("PrivateDnsEnabled") is True,
          f"optional {service} interface endpoint")

outputs = t["Outputs"]
for o in ("ApiUrl", "SigningKeySecretArn", *(f"{name}Name" for name in functions)):
    check(o in outputs, f"output {o}")
check(outputs.get("MailQueueUrl", {}).get("Value") == {"Ref": "MailQueue"}, "output MailQueueUrl")
check(outputs.get("MailDeadLetterQueueUrl", {}).get("Value") == {"Ref": "MailDeadLetterQueue"}, "output MailDeadLetterQueueUrl")

# The SAM translator's output: least-privilege roles as generated. It reads the region when
# imported, so it is imported here, after the region is set.
import os  # noqa: E402

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
from samtranslator.public.translator import ManagedPolicyLoader  # noqa: E402, F401
from samtranslator.translator.transform import transform  # noqa: E402


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
    if fn not in key_readers:
        check("SigningKeySecret" not in actions, f"{fn} role cannot read the key")
    granted = set()
    mail = []
    # What each function's code calls: GetSecretValue (keys.rs, db.rs, data_key.rs), rotate-key's four.
    allowed_actions = code_actions.get(fn, {"secretsmanager:GetSecretValue"})
    for st in statements(role["Properties"].get("Policies", [])):
        acts = actions_of(st)
        if mail_grant(st):
            mail.append(mail_grant(st))
            continue
        check(st["Effect"] == "Allow" and set(acts) == allowed_actions, f"{fn} role: exactly {sorted(allowed_actions)}, not {acts}")
        granted |= refs(st["Resource"])
    check(granted == secrets_of[fn], f"{fn} role reads exactly {sorted(secrets_of[fn])}, not {sorted(granted)}")
    check(sorted(mail) == expected_mail_grants(fn), f"{fn} role: of the mail path, exactly {expected_mail_grants(fn)}, not {sorted(mail)}")
    check(set(role["Properties"].get("ManagedPolicyArns", [])) <= set(NoPolicies().load().values()),
          f"{fn} role: only the basic execution and VPC access managed policies")
# jwks's grant is inside Fn::If IsRs256, as generated: with HS256 its role has no statement.
(jwks_policy,) = roles["JwksFunctionRole"]["Properties"]["Policies"]
check(set(jwks_policy) == {"Fn::If"} and jwks_policy["Fn::If"][0] == "IsRs256" and jwks_policy["Fn::If"][2] == {"Ref": "AWS::NoValue"},
      "jwks's role reads the public keys with RS256 only")
jwks_statements = list(statements(roles["JwksFunctionRole"]["Properties"].get("Policies", [])))
check(len(jwks_statements) == 1 and jwks_statements[0]["Effect"] == "Allow"
      and refs(jwks_statements[0]["Resource"]) == {"SigningPublicKeySecret"}
      and set(jwks_statements[0]["Action"] if isinstance(jwks_statements[0]["Action"], list) else [jwks_statements[0]["Action"]])
      == {"secretsmanager:GetSecretValue"}, "jwks's role: GetSecretValue on the public keys' secret, and nothing else")


# Across everything generated: the signing secret is readable by exactly the roles of the functions
# that sign or verify with it, jwks and rotate-key; nothing grants Secrets Manager on "*"; no
# resource policy opens the secret to anyone else.
def grants_on(node, secret):
    return [st for st in statements(node) if secret in refs(st.get("Resource"))]


key_roles = set()
for name, res in out["Resources"].items():
    if res["Type"] in ("AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::User", "AWS::IAM::Group"):
        for st in statements(res.get("Properties", {})):
            acts = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            if any(a.startswith("secretsmanager:") for a in acts):
                check(st.get("Resource") != "*" and st.get("Resource") != ["*"], f"{name}: Secrets Manager on every secret")
        if grants_on(res.get("Properties", {}), "SigningKeySecret"):
            key_roles.add(name)
    check(res["Type"] != "AWS::SecretsManager::ResourcePolicy", f"{name}: no resource policy on a secret")
check(key_roles == {f"{fn}Role" for fn in key_readers}, f"the signing key is readable by {sorted(key_roles)}")
check("JwksFunctionRole" not in key_roles, "jwks cannot read the signing secret")
public_roles = {name for name, res in out["Resources"].items()
                if res["Type"].startswith("AWS::IAM::") and grants_on(res.get("Properties", {}), "SigningPublicKeySecret")}
check(public_roles == {f"{fn}Role" for fn in public_key_readers}, f"the public keys' secret is readable by {sorted(public_roles)}")
# Only rotate-key writes it (PutSecretValue, UpdateSecretVersionStage); jwks only reads.
public_writers = {name for name, res in out["Resources"].items() if res["Type"].startswith("AWS::IAM::")
                  for st in grants_on(res.get("Properties", {}), "SigningPublicKeySecret")
                  if {"secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage"} & set(st["Action"] if isinstance(st["Action"], list) else [st["Action"]])}
check(public_writers == {"RotateKeyFunctionRole"}, f"only rotate-key writes the public keys' secret, not {sorted(public_writers)}")
# Nothing rotates it on its own: it changes only with the signing secret's rotation.
check(all(props(n).get("SecretId") != {"Ref": "SigningPublicKeySecret"} for n, r in R.items()
          if r["Type"] == "AWS::SecretsManager::RotationSchedule"), "the public keys' secret has no rotation schedule of its own")

# The data key is readable by exactly verify-email, reset-password and the mailer, and only read.
data_key_roles = {name for name, res in out["Resources"].items()
                  if res["Type"].startswith("AWS::IAM::") and grants_on(res.get("Properties", {}), "DataKeySecret")}
check(data_key_roles == {f"{fn}Role" for fn in data_key_readers}, f"the data key is readable by {sorted(data_key_roles)}")
for name, res in out["Resources"].items():
    if res["Type"].startswith("AWS::IAM::"):
        for st in grants_on(res.get("Properties", {}), "DataKeySecret"):
            check(actions_of(st) == ["secretsmanager:GetSecretValue"], f"{name}: on the data key only GetSecretValue, not {actions_of(st)}")

# SES and SQS across everything generated: ses:SendEmail only in the mailer's role, only on the
# sender's identities and only from EmailFrom; sqs:SendMessage only in the senders' roles and on
# MailQueue only; the SQS polling only in the mailer's role, on MailQueue only; no wildcard
# action anywhere (sqs:*, ses:Send*, *).
ses_roles, send_roles, consume_roles = set(), set(), set()
for name, res in out["Resources"].items():
    if not res["Type"].startswith("AWS::IAM::"):
        continue
    for st in statements(res.get("Properties", {})):
        acts = actions_of(st)
        if st.get("Effect") != "Allow":
            continue
        check(not any("*" in a for a in acts), f"{name}: a wildcard action {acts}")
        if any(a.lower().startswith(("ses:", "sesv2:")) for a in acts):
            check(mail_grant(st) == "ses", f"{name}: SES granted other than SendEmail on EmailFrom's identities from EmailFrom: {json.dumps(st)}")
            ses_roles.add(name)
        if any(a.lower().startswith("sqs:") for a in acts):
            kind = mail_grant(st)
            check(kind in ("send", "consume"), f"{name}: SQS granted other than SendMessage or the polling on MailQueue: {json.dumps(st)}")
            {"send": send_roles, "consume": consume_roles}.get(kind, set()).add(name)
check(ses_roles == {"MailerFunctionRole"}, f"ses:SendEmail is granted to exactly the mailer, not {sorted(ses_roles)}")
check(send_roles == {f"{fn}Role" for fn in mail_senders}, f"sqs:SendMessage on MailQueue is granted to exactly {sorted(mail_senders)}, not {sorted(send_roles)}")
check(consume_roles == {"MailerFunctionRole"}, f"only the mailer reads MailQueue, not {sorted(consume_roles)}")
# No resource policy opens the queue or an SES identity to anyone else.
for name, res in out["Resources"].items():
    check(res["Type"] not in ("AWS::SQS::QueuePolicy", "AWS::SQS::QueueInlinePolicy", "AWS::SES::EmailIdentity"),
          f"{name}: no queue policy and no SES identity in the stack")

# The mailer's trigger, as generated: one event source on MailQueue, to the mailer, in batches of
# 10, with partial batch responses (ReportBatchItemFailures: the mailer answers with the failed
# message ids, and only those are retried); its concurrency capped with the reserve.
mappings = {name: res["Properties"] for name, res in out["Resources"].items() if res["Type"] == "AWS::Lambda::EventSourceMapping"}
mail_mappings = {n: m for n, m in mappings.items() if '"MailQueue"' in json.dumps(m.get("EventSourceArn"))}
check(len(mail_mappings) == 1 and set(mappings) == set(mail_mappings), f"one event source, on MailQueue: {sorted(mappings)}")
for n, m in mail_mappings.items():
    check(m.get("EventSourceArn") == MAIL_QUEUE_ARN and m.get("FunctionName") == {"Ref": "MailerFunction"},
          f"{n}: MailQueue triggers the mailer")
    check(m.get("FunctionResponseTypes") == ["ReportBatchItemFailures"], f"{n}: the mailer's SQS event reports batch item failures")
    check(m.get("BatchSize") == 10, f"{n}: batches of 10")
    check(m.get("ScalingConfig") == {"Fn::If": ["ReserveMailer", {"MaximumConcurrency": {"Ref": "MailerReservedConcurrency"}}, {"Ref": "AWS::NoValue"}]},
          f"{n}: no more concurrent batches than the mailer's reserved concurrency")


def dependencies(node):
    """The logical names a value depends on: Ref, GetAtt and ${...} in Sub."""
    found = set()
    if isinstance(node, list):
        for item in node:
            found |= dependencies(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0] if isinstance(value, list) else value.split(".")[0])
            elif key == "Fn::Sub":
                text, names = (value, {}) if isinstance(value, str) else (value[0], value[1])
                found |= {v.split(".")[0] for v in re.findall(r"\$\{([^!}][^}]*)\}", text)} - set(names)
                found |= dependencies(names)
            else:
                found |= dependencies(value)
    return found


# No cycle among the generated resources (CloudFormation would refuse the stack), and in
# particular no function's environment refers to the API that routes to it.
graph = {}
for name, res in out["Resources"].items():
    deps = dependencies(res.get("Properties", {})) | dependencies(res.get("Condition", []))
    depends_on = res.get("DependsOn", [])
    deps |= set([depends_on] if isinstance(depends_on, str) else depends_on)
    graph[name] = deps & set(out["Resources"])
state = {}


def cycle_from(node, trail):
    state[node] = "open"
    for dep in sorted(graph[node]):
        if state.get(dep) == "open":
            return trail + [node, dep]
        if dep not in state:
            found = cycle_from(dep, trail + [node])
            if found:
                return found
    state[node] = "done"
    return None


cycle = None
for n in sorted(graph):
    if n not in state:
        cycle = cycle_from(n, [])
        if cycle:
            break
check(not cycle, f"no dependency cycle: {' -> '.join(cycle or [])}")
for fn in functions:
    env_deps = dependencies(out["Resources"][fn]["Properties"].get("Environment", {}))
    check(not env_deps & {"HttpApi", "HttpApiApiGatewayDefaultStage", "ApiDomain", "ApiDomainMapping", "JwtAuthorizer"},
          f"{fn}'s environment refers to no API resource: {sorted(env_deps)}")
check(dependencies(ISSUER) <= set(P), "the issuer is made of parameters only")


# The generated API: each route integrates with its own function.
paths = out["Resources"]["HttpApi"]["Properties"]["Body"]["paths"]
for route, fn in expected_routes.items():
    method, path = route.split(" ")
    uri = json.dumps(paths.get(path, {}).get(method.lower(), {}).get("x-amazon-apigateway-integration", {}).get("uri"))
    check(f"${{{fn}.Arn}}" in uri, f"{route} invokes {fn}")

if failures:
    sys.exit("template check failed:\n- " + "\n- ".join(failures))
print(f"template check: {len(R)} resources, {len(routes) + 1} routes, all promises kept")
