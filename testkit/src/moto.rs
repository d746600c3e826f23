//! moto's server, a local AWS API emulator, for the Secrets Manager, SQS and SES tests; and SDK
//! clients pointed at it to set up secrets, queues and sender identities the way an operator (or
//! rotation) would, and to read back the mail SES was asked to send.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

/// A running moto server.
pub struct Moto {
    child: Child,
    /// Its endpoint, for AWS_ENDPOINT_URL_SECRETS_MANAGER.
    pub endpoint: String,
}

/// Where `moto_server` is: MOTO_SERVER, the repository's `.venv`, or PATH.
pub fn moto_server_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("MOTO_SERVER") {
        return PathBuf::from(p);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/moto_server");
    if venv.is_file() {
        return venv;
    }
    PathBuf::from("moto_server")
}

/// Fake credentials and region for talking to moto.
pub const AWS_ENV: [(&str, &str); 4] = [
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_REGION", "us-east-1"),
    ("AWS_DEFAULT_REGION", "us-east-1"),
];

impl Moto {
    /// Starts moto on a free port and waits until it answers.
    pub async fn start() -> Self {
        Self::start_with_env(&[]).await
    }

    /// Starts moto enforcing IAM after its first three requests (which set things up: see
    /// [`Moto::create_secret_and_powerless_user`]).
    pub async fn start_with_iam() -> Self {
        Self::start_with_env(&[("INITIAL_NO_AUTH_ACTION_COUNT", "3")]).await
    }

    /// On a moto from [`Moto::start_with_iam`]: creates a secret and an IAM user with no
    /// policy at all (three requests, before enforcement starts); returns the secret's ARN and
    /// the user's access key id and secret key.
    pub async fn create_secret_and_powerless_user(
        &self,
        name: &str,
        value: &str,
    ) -> (String, String, String) {
        let script = r#"
import json, sys, boto3
kw = dict(endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
arn = boto3.client("secretsmanager", **kw).create_secret(Name=sys.argv[2], SecretString=sys.argv[3])["ARN"]
iam = boto3.client("iam", **kw)
iam.create_user(UserName="powerless")
key = iam.create_access_key(UserName="powerless")["AccessKey"]
print(json.dumps([arn, key["AccessKeyId"], key["SecretAccessKey"]]))
"#;
        let out = Command::new(crate::venv_python())
            .args(["-c", script, &self.endpoint, name, value])
            .output()
            .await
            .expect("python runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: Vec<String> = serde_json::from_slice(&out.stdout).expect("three strings");
        (v[0].clone(), v[1].clone(), v[2].clone())
    }

    async fn start_with_env(env: &[(&str, &str)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let bin = moto_server_binary();
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "starting {} failed ({e}); `make test` installs moto into .venv",
                    bin.display()
                )
            });
        let endpoint = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "moto did not start within 30 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { child, endpoint }
    }

    /// The environment a function needs to use this moto for Secrets Manager.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> =
            AWS_ENV.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        env.push(("AWS_ENDPOINT_URL_SECRETS_MANAGER".into(), self.endpoint.clone()));
        env
    }

    /// The function binary `binary` (by name, as [`crate::binary`] finds it) started behind
    /// the Runtime API emulator with this moto's settings ([`Moto::env`]) and `env`.
    pub async fn function(
        &self,
        binary: &str,
        env: &[(&str, &str)],
    ) -> crate::runtime_api::Function {
        self.function_through(&self.endpoint, binary, env).await
    }

    /// [`Moto::function`], reaching Secrets Manager at `endpoint` instead (a
    /// [`crate::aws_proxy::AwsProxy`] in front of this moto).
    pub async fn function_through(
        &self,
        endpoint: &str,
        binary: &str,
        env: &[(&str, &str)],
    ) -> crate::runtime_api::Function {
        let mut all = self.env();
        for (k, v) in &mut all {
            if k == "AWS_ENDPOINT_URL_SECRETS_MANAGER" {
                *v = endpoint.to_owned();
            }
        }
        all.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let refs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        crate::runtime_api::Function::start(&crate::binary(binary), &refs).await
    }

    /// An SDK client for this moto.
    pub async fn client(&self) -> aws_sdk_secretsmanager::Client {
        let creds = aws_sdk_secretsmanager::config::Credentials::new(
            "testing", "testing", None, None, "test",
        );
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let conf = aws_sdk_secretsmanager::Config::builder()
            .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
            .region(aws_sdk_secretsmanager::config::Region::new("us-east-1"))
            .credentials_provider(creds)
            .endpoint_url(&self.endpoint)
            .http_client(http)
            .build();
        aws_sdk_secretsmanager::Client::from_conf(conf)
    }

    /// The HTTP client the SDK clients below use (plain HTTP to moto; rustls on ring as the
    /// functions' own).
    fn http_client() -> aws_sdk_sqs::config::SharedHttpClient {
        aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https()
    }

    /// An SQS client for this moto.
    pub async fn sqs_client(&self) -> aws_sdk_sqs::Client {
        let creds = aws_sdk_sqs::config::Credentials::new("testing", "testing", None, None, "test");
        let conf = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(aws_sdk_sqs::config::Region::new("us-east-1"))
            .credentials_provider(creds)
            .endpoint_url(&self.endpoint)
            .http_client(Self::http_client())
            .build();
        aws_sdk_sqs::Client::from_conf(conf)
    }

    /// An SES v2 client for this moto.
    pub async fn ses_client(&self) -> aws_sdk_sesv2::Client {
        let creds =
            aws_sdk_sesv2::config::Credentials::new("testing", "testing", None, None, "test");
        let conf = aws_sdk_sesv2::Config::builder()
            .behavior_version(aws_sdk_sesv2::config::BehaviorVersion::latest())
            .region(aws_sdk_sesv2::config::Region::new("us-east-1"))
            .credentials_provider(creds)
            .endpoint_url(&self.endpoint)
            .http_client(Self::http_client())
            .build();
        aws_sdk_sesv2::Client::from_conf(conf)
    }

    /// Creates the SQS queue `name`; returns its URL (MAIL_QUEUE_URL).
    pub async fn create_queue(&self, name: &str) -> String {
        let out = self
            .sqs_client()
            .await
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("creating queue {name} in moto: {e:?}"));
        out.queue_url.expect("moto answers with the queue URL")
    }

    /// The bodies of the messages waiting in the queue at `url` (up to ten, as they are
    /// received: they become invisible for moto's default visibility timeout).
    pub async fn receive_messages(&self, url: &str) -> Vec<String> {
        let out = self
            .sqs_client()
            .await
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap_or_else(|e| panic!("receiving from {url} in moto: {e:?}"));
        out.messages.unwrap_or_default().into_iter().filter_map(|m| m.body).collect()
    }

    /// Verifies `identity` (an address or a domain) as an SES sender (SES v2
    /// CreateEmailIdentity; moto treats it as verified at once).
    pub async fn create_email_identity(&self, identity: &str) {
        self.ses_client()
            .await
            .create_email_identity()
            .email_identity(identity)
            .send()
            .await
            .unwrap_or_else(|e| panic!("creating SES identity {identity} in moto: {e:?}"));
    }

    /// The mail SES was asked to send so far, from moto's `/moto-api/data.json`: each with its
    /// `source`, `destinations` (`{"ToAddresses": [...]}`), `subject` and `body` (moto keeps only
    /// the HTML part of a Simple message).
    pub async fn sent_mail(&self) -> Vec<serde_json::Value> {
        let url = format!("{}/moto-api/data.json", self.endpoint);
        let reply = crate::client::send("GET", &url, &[], bytes::Bytes::new()).await;
        assert_eq!(reply.status, 200, "{url}: {}", String::from_utf8_lossy(&reply.body));
        let data = reply.json();
        data["ses"]["Message"].as_array().cloned().unwrap_or_default()
    }

    /// Stops moto (to test a warm function riding out an outage).
    pub async fn stop(&mut self) {
        let _ = self.child.kill().await;
    }
}
