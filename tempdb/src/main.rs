//! `tempdb -- COMMAND [ARGS...]`: runs COMMAND with DATABASE_URL pointing at a throwaway
//! PostgreSQL cluster (database `postgres`, superuser), then removes the cluster. The test
//! command uses it so the whole suite shares one server instead of starting one per test.

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args = match args.first().map(String::as_str) {
        Some("--") => &args[1..],
        _ => &args[..],
    };
    let Some((program, rest)) = args.split_first() else {
        eprintln!("usage: tempdb -- COMMAND [ARGS...]");
        return ExitCode::from(2);
    };
    let cluster = match tempdb::Cluster::start(tempdb::Options::default()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tempdb: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("tempdb: PostgreSQL on 127.0.0.1:{} (removed when the command ends)", cluster.port());
    let status =
        Command::new(program).args(rest).env("DATABASE_URL", cluster.url("postgres")).status();
    drop(cluster);
    match status {
        Ok(s) => ExitCode::from(s.code().unwrap_or(1).clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("tempdb: could not run {program}: {e}");
            ExitCode::FAILURE
        }
    }
}
