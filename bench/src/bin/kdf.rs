//! `make bench-kdf`: one PBKDF2-HMAC-SHA256 hash against the SHA-256 floor of the machine it
//! runs on, for a Graviton instance or a Lambda function, where the login cost is decided and
//! where no benchmark here runs.
//!
//! The floor is the one the criterion bench (`benches/kdf.rs`) and `make bench` use: 2 ×
//! iterations SHA-256 block compressions (a PBKDF2 iteration is two HMAC compressions), fed 256
//! blocks (16 KiB) per `sha2` `compress256` call, as `openssl speed -evp sha256 -bytes 16384`
//! feeds them. `compress256` picks the CPU's SHA-2 instructions at run time (SHA-NI on x86-64,
//! the ARMv8 SHA-2 extension on Graviton), so the floor is the hardware's. Beside it: the same
//! number of single-block calls chained through the state (a straightforward PBKDF2 loop), ours
//! (`auth_shared::kdf`) and the `pbkdf2` crate. The cases run interleaved, round by round, and
//! the medians are printed.
//!
//!   cargo run --release -p auth-bench --bin kdf -- [--iterations N] [--rounds R] [--json]
//!
//! Inside AWS Lambda (AWS_LAMBDA_RUNTIME_API set) it serves invocations instead: each one
//! measures and returns the JSON document (docs/benchmarks.md, "PBKDF2 on Graviton").

use std::hint::black_box;
use std::time::Instant;

use serde_json::{Value, json};

/// SHA-256's initial state.
const IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];
const PASSWORD: &[u8] = b"correct horse battery staple";
const SALT: &[u8] = b"0123456789abcdef";
/// The target `make bench` reports: ours within this factor of the floor.
const TARGET: f64 = 1.15;

/// What the run measures: iterations per hash, rounds of every case.
#[derive(Clone, Copy)]
struct Plan {
    iterations: u32,
    rounds: usize,
}

/// The hardware floor: 2 × iterations compressions, 256 blocks per call.
fn floor(iterations: u32, buffer: &[[u8; 64]]) -> [u32; 8] {
    let mut state = IV;
    for _ in 0..(2 * iterations as usize).div_ceil(buffer.len()) {
        sha2::block_api::compress256(&mut state, black_box(buffer));
    }
    state
}

/// The same compressions one block per call, each block depending on the previous state.
fn chain(iterations: u32) -> [u32; 8] {
    let mut state = IV;
    let mut block = [0u8; 64];
    for _ in 0..2 * iterations {
        sha2::block_api::compress256(&mut state, std::slice::from_ref(&block));
        block[..4].copy_from_slice(&state[0].to_be_bytes());
    }
    state
}

fn ours(iterations: u32) -> [u8; 32] {
    let mut out = [0u8; 32];
    auth_shared::kdf::pbkdf2_hmac_sha256(black_box(PASSWORD), SALT, iterations, &mut out);
    out
}

fn crate_pbkdf2(iterations: u32) -> [u8; 32] {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(black_box(PASSWORD), SALT, iterations, &mut out);
    out
}

/// Whether the CPU has the SHA-256 instructions `sha2` and our kdf use.
fn sha_instructions() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("sha") && std::is_x86_feature_detected!("sse4.1")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("sha2")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |key: &str| {
        info.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
    };
    if let Some(model) = field("model name") {
        return model;
    }
    // Arm kernels give only the implementer and part numbers; Graviton's cores are Neoverse.
    match field("CPU part").as_deref() {
        Some("0xd0c") => "Neoverse N1 (Graviton2)".into(),
        Some("0xd40") => "Neoverse V1 (Graviton3)".into(),
        Some("0xd4f") => "Neoverse V2 (Graviton4)".into(),
        Some(part) => format!("CPU part {part}"),
        None => "unknown".into(),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs every case `rounds` times, interleaved, and returns the JSON document.
fn measure(plan: Plan) -> Value {
    let buffer = vec![[0x5au8; 64]; 256];
    let cases: [(&str, &dyn Fn()); 4] = [
        ("floor: SHA-256 compressions, 16 KiB per call", &|| {
            black_box(floor(plan.iterations, &buffer));
        }),
        ("chain: single-block compress256 calls", &|| {
            black_box(chain(plan.iterations));
        }),
        ("auth-shared kdf (ours)", &|| {
            black_box(ours(plan.iterations));
        }),
        ("pbkdf2 crate", &|| {
            black_box(crate_pbkdf2(plan.iterations));
        }),
    ];
    // One untimed pass of each: page faults, frequency ramp-up, feature detection.
    for (_, f) in &cases {
        f();
    }
    let mut samples = vec![Vec::with_capacity(plan.rounds); cases.len()];
    for _ in 0..plan.rounds {
        for (i, (_, f)) in cases.iter().enumerate() {
            let t = Instant::now();
            f();
            samples[i].push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let floor_ms = median(samples[0].clone());
    let rows: Vec<Value> = cases
        .iter()
        .zip(&samples)
        .map(|((name, _), s)| {
            let m = median(s.clone());
            json!({"case": name, "median_ms": m, "min_ms": s.iter().copied().fold(f64::INFINITY, f64::min),
                   "ratio_to_floor": m / floor_ms})
        })
        .collect();
    let ours_ms = rows[2]["median_ms"].as_f64().unwrap_or(f64::NAN);
    json!({
        "arch": std::env::consts::ARCH,
        "cpu": cpu_model(),
        "sha_instructions": sha_instructions(),
        // Where ours runs its iterations: a register path, or null for one compress256 call per
        // compression (the portable fallback).
        "register_path": auth_shared::kdf::register_path(),
        "iterations": plan.iterations,
        "compressions": 2 * u64::from(plan.iterations),
        "rounds": plan.rounds,
        // A wrong hash would make any speed meaningless.
        "ours_equals_pbkdf2_crate": ours(1000) == crate_pbkdf2(1000),
        "cases": rows,
        "floor_ms": floor_ms,
        "ours_ms": ours_ms,
        "ratio": ours_ms / floor_ms,
        "target_ratio": TARGET,
        "target_met": ours_ms / floor_ms <= TARGET,
    })
}

fn print_table(r: &Value) {
    let iterations = r["iterations"].as_u64().unwrap_or(0);
    println!(
        "PBKDF2-HMAC-SHA256, {} iterations ({} SHA-256 compressions), {} rounds, medians",
        auth_shared::password::group_digits(iterations),
        auth_shared::password::group_digits(2 * iterations),
        r["rounds"]
    );
    println!(
        "{} ({}), SHA-256 instructions: {}; ours runs in: {}; ours equals the pbkdf2 crate: {}",
        r["arch"].as_str().unwrap_or("?"),
        r["cpu"].as_str().unwrap_or("?"),
        if r["sha_instructions"] == true { "yes" } else { "no" },
        r["register_path"]
            .as_str()
            .map_or("one compress256 call per block".into(), |p| format!("{p} registers")),
        if r["ours_equals_pbkdf2_crate"] == true { "yes" } else { "NO" },
    );
    println!();
    println!("{:<48} {:>10} {:>10} {:>8}", "", "median", "min", "× floor");
    for row in r["cases"].as_array().into_iter().flatten() {
        println!(
            "{:<48} {:>7.1} ms {:>7.1} ms {:>7.2}×",
            row["case"].as_str().unwrap_or("?"),
            row["median_ms"].as_f64().unwrap_or(f64::NAN),
            row["min_ms"].as_f64().unwrap_or(f64::NAN),
            row["ratio_to_floor"].as_f64().unwrap_or(f64::NAN),
        );
    }
    println!();
    println!(
        "floor {:.1} ms; ours {:.1} ms = {:.2}× the floor (target ≤ {:.2}×: {})",
        r["floor_ms"].as_f64().unwrap_or(f64::NAN),
        r["ours_ms"].as_f64().unwrap_or(f64::NAN),
        r["ratio"].as_f64().unwrap_or(f64::NAN),
        TARGET,
        if r["target_met"] == true { "met" } else { "not met" },
    );
}

fn parse_args() -> Result<(Plan, bool), String> {
    let mut plan = Plan { iterations: 600_000, rounds: 11 };
    let mut json_out = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .and_then(|v| v.parse::<u64>().ok())
                .filter(|&v| v > 0)
                .ok_or(format!("{name} needs a positive number"))
        };
        match a.as_str() {
            "--iterations" => {
                plan.iterations = u32::try_from(value("--iterations")?)
                    .map_err(|_| "--iterations is too large".to_string())?
            }
            "--rounds" => plan.rounds = value("--rounds")? as usize,
            "--json" => json_out = true,
            "-h" | "--help" => {
                return Err(
                    "usage: kdf [--iterations N (600000)] [--rounds R (11)] [--json]".into()
                );
            }
            other => return Err(format!("unknown argument {other}; try --help")),
        }
    }
    Ok((plan, json_out))
}

/// Inside Lambda: every invocation measures (the event may set `iterations` and `rounds`).
async fn serve_lambda() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(lambda_runtime::service_fn(
        |event: lambda_runtime::LambdaEvent<Value>| async move {
            let get = |k: &str, d: u64| event.payload.get(k).and_then(Value::as_u64).unwrap_or(d);
            let plan = Plan {
                iterations: get("iterations", 600_000).clamp(1, 10_000_000) as u32,
                rounds: get("rounds", 11).clamp(1, 101) as usize,
            };
            Ok::<Value, lambda_runtime::Error>(measure(plan))
        },
    ))
    .await
}

fn main() -> std::process::ExitCode {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
        return match rt.map(|rt| rt.block_on(serve_lambda())) {
            Ok(Ok(())) => std::process::ExitCode::SUCCESS,
            Ok(Err(e)) => {
                eprintln!("kdf: {e}");
                std::process::ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("kdf: {e}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    let (plan, json_out) = match parse_args() {
        Ok(x) => x,
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::from(2);
        }
    };
    let r = measure(plan);
    if json_out {
        println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
    } else {
        print_table(&r);
    }
    if r["ours_equals_pbkdf2_crate"] == true {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
