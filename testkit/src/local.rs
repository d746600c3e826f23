//! The local server (`auth-local`) as a process: started on a free port, its banner read for
//! the address and the demo password, stopped with SIGINT like Ctrl-C.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

/// A running `auth-local`.
pub struct LocalServer {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The demo user's password, when it made its own database.
    pub demo_password: Option<String>,
    /// The throwaway cluster's data directory, when it made one.
    pub data_dir: Option<String>,
    output: crate::Output,
}

impl LocalServer {
    /// Starts `binary --port 0` with a clean environment plus `env`, and waits (up to 60 s)
    /// until it listens. Returns the output instead if it exits first.
    pub async fn start(binary: &Path, env: &[(&str, &str)]) -> Result<Self, String> {
        Self::start_on(binary, 0, env).await
    }

    /// A free port to start on, for a server that must know its own URL before it starts
    /// (JWT_ISSUER, which discovery publishes).
    pub fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port")
    }

    /// Like [`LocalServer::start`], on `port` (0 picks a free one).
    pub async fn start_on(binary: &Path, port: u16, env: &[(&str, &str)]) -> Result<Self, String> {
        let mut child = Command::new(binary)
            .args(["--port", &port.to_string()])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", binary.display()))?;
        let output = crate::capture_output(&mut child);
        let started = Instant::now();
        loop {
            let text = crate::output_text(&output);
            if let Some(line) = text.lines().find(|l| l.contains("listening on http://")) {
                let base = line.split("listening on ").nth(1).unwrap_or_default().trim().to_owned();
                let demo_password = text
                    .lines()
                    .find(|l| l.contains("demo user:"))
                    .and_then(|l| l.split("password ").nth(1))
                    .and_then(|rest| rest.split_whitespace().next())
                    .map(str::to_owned);
                let data_dir = text
                    .lines()
                    .find(|l| l.contains("throwaway PostgreSQL in "))
                    .and_then(|l| l.split(" in ").nth(1))
                    .and_then(|rest| rest.split(" (").next())
                    .map(str::to_owned);
                return Ok(Self { child, base, demo_password, data_dir, output });
            }
            if let Ok(Some(status)) = child.try_wait() {
                tokio::time::sleep(Duration::from_millis(200)).await;
                return Err(format!("exited with {status}:\n{}", crate::output_text(&output)));
            }
            if started.elapsed() > Duration::from_secs(60) {
                return Err(format!("not listening after 60 s:\n{text}"));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Everything it printed so far.
    pub fn output(&self) -> String {
        crate::output_text(&self.output)
    }

    /// A URL on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends SIGINT (Ctrl-C) and waits up to `timeout` for the exit code.
    pub async fn interrupt(&mut self, timeout: Duration) -> Option<i32> {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill").args(["-INT", &pid.to_string()]).status();
        }
        let status = tokio::time::timeout(timeout, self.child.wait()).await.ok()?.ok()?;
        status.code()
    }
}
