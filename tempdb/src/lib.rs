//! A throwaway PostgreSQL cluster made with the system's own `initdb` / `pg_ctl`, for the local
//! server and the tests.
//!
//! The cluster lives in a fresh temporary directory, listens on 127.0.0.1 on a free port, and
//! has a random superuser password. A small guard process (a shell reading its stdin) owns its
//! lifetime: when this process drops the [`Cluster`], exits, or is killed, the guard's stdin
//! closes and it stops the server and removes the directory, so nothing is left running.
//! As root, everything runs as the `postgres` user, since `initdb` refuses root.

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Why a cluster could not be made or managed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The PostgreSQL server binaries were not found.
    #[error(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found on PATH, in PG_BINDIR or under /usr/lib/postgresql/*/bin"
    )]
    NoBinaries,
    /// Running as root without a `postgres` user to run the server as.
    #[error("running as root needs a 'postgres' user to run the server as (initdb refuses root)")]
    NoPostgresUser,
    /// A command failed.
    #[error("{what} failed: {detail}")]
    Command {
        /// Which step.
        what: &'static str,
        /// Its output.
        detail: String,
    },
    /// A file operation failed.
    #[error("{what}: {source}")]
    Io {
        /// Which step.
        what: &'static str,
        /// The cause.
        source: std::io::Error,
    },
}

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { what, source }
}

/// Server certificate and key for a cluster that accepts TLS.
#[derive(Debug, Clone)]
pub struct Tls {
    /// PEM certificate chain (server certificate first).
    pub cert_pem: String,
    /// PEM private key.
    pub key_pem: String,
}

/// How to make the cluster.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Turn TLS on with this certificate.
    pub tls: Option<Tls>,
    /// Extra `postgresql.conf` settings.
    pub settings: Vec<(String, String)>,
    /// Keep fsync and friends on (off by default: the data is thrown away).
    pub durable: bool,
}

/// A running throwaway cluster.
pub struct Cluster {
    base: PathBuf,
    data: PathBuf,
    bindir: PathBuf,
    port: u16,
    password: String,
    owner: Option<(u32, u32)>,
    guard: Mutex<Option<Child>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("data", &self.data).field("port", &self.port).finish()
    }
}

/// Finds the directory holding initdb, pg_ctl and postgres.
pub fn find_bindir() -> Result<PathBuf, Error> {
    let has_all = |d: &Path| ["initdb", "pg_ctl", "postgres"].iter().all(|b| d.join(b).is_file());
    if let Some(d) = std::env::var_os("PG_BINDIR").map(PathBuf::from)
        && has_all(&d)
    {
        return Ok(d);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            if has_all(&d) {
                return Ok(d);
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, d)| has_all(d))
        .collect();
    versions.sort();
    versions.pop().map(|(_, d)| d).ok_or(Error::NoBinaries)
}

/// The uid and gid of the `postgres` user when we are root; `None` otherwise.
fn server_owner() -> Result<Option<(u32, u32)>, Error> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    let user = nix::unistd::User::from_name("postgres").map_err(|errno| Error::Io {
        what: "looking up the postgres user",
        source: errno.into(),
    })?;
    let user = user.ok_or(Error::NoPostgresUser)?;
    Ok(Some((user.uid.as_raw(), user.gid.as_raw())))
}

fn free_port() -> Result<u16, Error> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(io("finding a free port"))?;
    Ok(l.local_addr().map_err(io("finding a free port"))?.port())
}

fn random_password() -> Result<String, Error> {
    let mut buf = [0u8; 18];
    getrandom::fill(&mut buf).map_err(|e| Error::Io {
        what: "reading the system's random source",
        source: std::io::Error::other(e),
    })?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

impl Cluster {
    /// Makes and starts a cluster.
    pub fn start(opts: Options) -> Result<Self, Error> {
        let bindir = find_bindir()?;
        let owner = server_owner()?;
        let base = std::env::temp_dir().join(format!(
            "tempdb-{}-{}",
            std::process::id(),
            &random_password()?[..8]
        ));
        let data = base.join("data");
        fs::create_dir_all(base.join("sock")).map_err(io("creating the cluster directory"))?;
        fs::set_permissions(&base, fs::Permissions::from_mode(0o700))
            .map_err(io("setting permissions"))?;
        let password = random_password()?;
        let pwfile = base.join("pwfile");
        fs::write(&pwfile, format!("{password}\n")).map_err(io("writing the password file"))?;
        if let Some((uid, gid)) = owner {
            for p in [&base, &base.join("sock"), &pwfile] {
                std::os::unix::fs::chown(p, Some(uid), Some(gid))
                    .map_err(io("chown to postgres"))?;
            }
        }
        let mut cluster = Self {
            base: base.clone(),
            data: data.clone(),
            bindir,
            port: 0,
            password,
            owner,
            guard: Mutex::new(None),
        };
        // From here on the guard removes the directory whatever happens.
        cluster.spawn_guard()?;
        let locale = if Path::new("/usr/lib/locale/C.utf8").exists() { "C.UTF-8" } else { "C" };
        cluster.run(
            "initdb",
            cluster.command("initdb").args([
                "-D",
                path_str(&data),
                "-U",
                "postgres",
                "-A",
                "scram-sha-256",
                "--pwfile",
                path_str(&pwfile),
                "-E",
                "UTF8",
                "--locale",
                locale,
                "--no-sync",
                "--no-instructions",
            ]),
        )?;
        let _ = fs::remove_file(&pwfile);
        let mut conf = format!(
            "\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nmax_connections = 300\n",
            path_str(&base.join("sock"))
        );
        if !opts.durable {
            conf.push_str("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n");
        }
        if let Some(tls) = &opts.tls {
            let cert = data.join("server.crt");
            let key = data.join("server.key");
            fs::write(&cert, &tls.cert_pem).map_err(io("writing server.crt"))?;
            fs::write(&key, &tls.key_pem).map_err(io("writing server.key"))?;
            fs::set_permissions(&key, fs::Permissions::from_mode(0o600))
                .map_err(io("setting key permissions"))?;
            if let Some((uid, gid)) = owner {
                for p in [&cert, &key] {
                    std::os::unix::fs::chown(p, Some(uid), Some(gid))
                        .map_err(io("chown to postgres"))?;
                }
            }
            conf.push_str("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        }
        for (k, v) in &opts.settings {
            conf.push_str(&format!("{k} = '{}'\n", v.replace('\'', "''")));
        }
        append(&data.join("postgresql.conf"), &conf)?;
        // Another process may take the port between our probe and the server's bind: retry.
        let mut last = None;
        for _ in 0..5 {
            cluster.port = free_port()?;
            append(&data.join("postgresql.conf"), &format!("port = {}\n", cluster.port))?;
            match cluster.start_server() {
                Ok(()) => return Ok(cluster),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(Error::NoBinaries))
    }

    /// The TCP port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The superuser's password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// A `postgres://` URL for database `dbname` as the superuser, without TLS.
    pub fn url(&self, dbname: &str) -> String {
        format!(
            "postgres://postgres:{}@127.0.0.1:{}/{dbname}?sslmode=disable",
            self.password, self.port
        )
    }

    /// The server log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.base.join("server.log")).unwrap_or_default()
    }

    /// Starts the server (after [`Cluster::stop_server`]).
    pub fn start_server(&self) -> Result<(), Error> {
        let log = self.base.join("server.log");
        self.run(
            "pg_ctl start",
            self.command("pg_ctl").args([
                "-D",
                path_str(&self.data),
                "-l",
                path_str(&log),
                "-w",
                "-t",
                "60",
                "start",
            ]),
        )
    }

    /// Stops the server (fast shutdown: sessions are ended) and keeps the data.
    pub fn stop_server(&self) -> Result<(), Error> {
        self.run(
            "pg_ctl stop",
            self.command("pg_ctl").args(["-D", path_str(&self.data), "-m", "fast", "-w", "stop"]),
        )
    }

    /// Stops and starts the server.
    pub fn restart(&self) -> Result<(), Error> {
        self.stop_server()?;
        self.start_server()
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bindir.join(program));
        cmd.env("LC_ALL", "C").env_remove("PGDATA").env_remove("PGPORT");
        cmd.current_dir(&self.base);
        if let Some((uid, gid)) = self.owner {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    fn run(&self, what: &'static str, cmd: &mut Command) -> Result<(), Error> {
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::Command { what, detail: e.to_string() })?;
        if out.status.success() {
            return Ok(());
        }
        let mut detail = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        if detail.is_empty() {
            detail = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        }
        let log = self.log();
        if !log.is_empty() {
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            detail = format!(
                "{detail}\nserver log:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        Err(Error::Command { what, detail })
    }

    /// Starts the guard: a shell, in its own process group (so a terminal's Ctrl-C does not
    /// reach it), that waits for its stdin to close, then stops the server and removes the
    /// directory.
    fn spawn_guard(&mut self) -> Result<(), Error> {
        let script = r#"trap '' INT TERM HUP
while read -r _line; do :; done
"$1/pg_ctl" -D "$2/data" -m fast -w -t 20 stop >/dev/null 2>&1 || "$1/pg_ctl" -D "$2/data" -m immediate -w stop >/dev/null 2>&1
rm -rf "$2""#;
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", script, "tempdb-guard", path_str(&self.bindir), path_str(&self.base)])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        if let Some((uid, gid)) = self.owner {
            cmd.uid(uid).gid(gid);
        }
        let child = cmd.spawn().map_err(io("starting the cluster guard"))?;
        *self.guard.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
        Ok(())
    }

    /// Stops the server and removes the directory now (also done on drop).
    pub fn shutdown(&self) {
        let child = self.guard.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(mut child) = child {
            drop(child.stdin.take());
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn append(path: &Path, text: &str) -> Result<(), Error> {
    let mut f =
        fs::OpenOptions::new().append(true).open(path).map_err(io("editing postgresql.conf"))?;
    f.write_all(text.as_bytes()).map_err(io("editing postgresql.conf"))
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}
