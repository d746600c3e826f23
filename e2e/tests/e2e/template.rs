//! The SAM template, offline: cfn-lint and `sam validate --lint` are clean, its wiring keeps the
//! service's promises (checked on the template and on the SAM translator's output), samconfig
//! names only real parameters, and `sam build` makes an arm64 `bootstrap` for every function with
//! cargo-lambda and no Docker, which then keep the events' contract under qemu-user and share a
//! database with the x86-64 builds (see `arm64/`).

mod arm64;

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn venv_bin(tool: &str) -> PathBuf {
    let p = root().join(".venv/bin").join(tool);
    assert!(p.is_file(), "{} is missing: run `make tools`", p.display());
    p
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd
        .current_dir(root())
        .env("SAM_CLI_TELEMETRY", "0")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap();
    (
        out.status.success(),
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    )
}

#[test]
fn cfn_lint_and_sam_validate_are_clean() {
    let (ok, out) = run(Command::new(venv_bin("cfn-lint")).arg("template.yaml"));
    assert!(ok && out.trim().is_empty(), "cfn-lint: {out}");
    let (ok, out) = run(Command::new(venv_bin("sam")).args(["validate", "--lint"]));
    assert!(ok && out.contains("is a valid SAM Template"), "sam validate --lint: {out}");
    assert!(!out.to_lowercase().contains("warning"), "{out}");
    // Plain `sam validate` needs a region and no credentials.
    let (ok, out) = run(Command::new(venv_bin("sam"))
        .arg("validate")
        .env("AWS_ACCESS_KEY_ID", "")
        .env("AWS_SECRET_ACCESS_KEY", ""));
    assert!(ok && out.contains("is a valid SAM Template"), "sam validate: {out}");
}

#[test]
fn the_template_wiring_keeps_the_promises() {
    let script = root().join("e2e/python/check_template.py");
    let (ok, out) = run(Command::new(testkit::venv_python()).arg(script).arg("template.yaml"));
    assert!(ok && out.contains("all promises kept"), "{out}");
}

#[test]
fn samconfig_names_only_real_parameters_and_prod_hides_test_db() {
    let template = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    let samconfig = std::fs::read_to_string(root().join("samconfig.toml")).unwrap();
    let mut prod = false;
    for line in samconfig.lines() {
        if line.starts_with('[') {
            prod = line.starts_with("[prod.");
        }
        if let Some(rest) = line.strip_prefix("parameter_overrides = ") {
            for pair in rest.trim_matches('"').split_whitespace() {
                let (name, value) = pair.split_once('=').unwrap();
                assert!(
                    template.contains(&format!("\n  {name}:\n")),
                    "samconfig sets unknown parameter {name}"
                );
                if prod && name == "TestDbAccess" {
                    assert!(value == "off" || value == "iam", "prod leaves /test-db open");
                }
            }
        }
    }
    for env in ["[dev.deploy.parameters]", "[prod.deploy.parameters]", "[default.build.parameters]"]
    {
        assert!(samconfig.contains(env), "{env}");
    }
    assert!(samconfig.contains("beta_features = true") && samconfig.contains("parallel = true"));
    assert!(samconfig.contains("confirm_changeset = true") && samconfig.contains("CAPABILITY_IAM"));
    // Every parameter the deploy walk-through (the README's summary and docs/deploying.md)
    // tells people to set exists.
    let mut deploy = String::new();
    for doc in ["README.md", "docs/deploying.md"] {
        let text = std::fs::read_to_string(root().join(doc)).unwrap();
        let section = text
            .split("## Deploying to AWS")
            .nth(1)
            .unwrap_or_else(|| panic!("{doc}: a deploy section"))
            .split("\n## ")
            .next()
            .unwrap()
            .to_owned();
        deploy.push_str(&section);
    }
    // Parameter names appear in backticks: `DatabaseSecretArn`.
    for quoted in deploy.split('`').skip(1).step_by(2) {
        let word = quoted.split('=').next().unwrap_or_default();
        let pascal = word.len() > 3
            && word.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            && word.chars().all(|c| c.is_ascii_alphanumeric())
            && word.chars().skip(1).any(|c| c.is_ascii_uppercase())
            && word.chars().any(|c| c.is_ascii_lowercase());
        if pascal && !word.ends_with("Function") && !word.ends_with("Layer") && word != "ApiUrl" {
            assert!(
                template.contains(&format!("\n  {word}:\n")),
                "the deploy docs name parameter {word}, which the template lacks"
            );
        }
    }
}

/// The docs' example of a route protected by the JWT authorizer, added to the template as a
/// user would, lints clean: the authorizer, the API and the condition it names exist, and the
/// route is JWT-authorized by `JwtAuthorizer`.
#[test]
fn the_readme_protected_route_example_fits_the_template() {
    let template = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    let readme = std::fs::read_to_string(root().join("docs/tokens-and-keys.md")).unwrap();
    let example = readme
        .split("**Protecting another route with the JWT authorizer.**")
        .nth(1)
        .and_then(|s| s.split("```yaml\n").nth(1))
        .and_then(|s| s.split("```").next())
        .expect("the protected-route example in docs/tokens-and-keys.md");
    assert!(example.contains("AuthorizationType: JWT"), "{example}");
    assert!(example.contains("AuthorizerId: !Ref JwtAuthorizer"), "{example}");
    assert!(template.contains("\n  JwtAuthorizer:\n"), "the template defines JwtAuthorizer");
    let extended = template.replacen("\nOutputs:\n", &format!("\n{example}\nOutputs:\n"), 1);
    assert_ne!(extended, template);
    let dir = std::env::temp_dir().join(format!("readme-route-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("template.yaml");
    std::fs::write(&path, extended).unwrap();
    let (ok, out) = run(Command::new(venv_bin("cfn-lint")).arg(&path));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(ok && out.trim().is_empty(), "cfn-lint on the template with the README's route: {out}");
}

/// ELF machine of a binary: 0xB7 is AArch64.
fn elf_machine(path: &Path) -> u16 {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..4], b"\x7fELF", "{} is not ELF", path.display());
    u16::from_le_bytes([bytes[18], bytes[19]])
}

/// Every function the template deploys: the resources of type `AWS::Serverless::Function`.
fn template_functions(template: &str) -> Vec<String> {
    let lines: Vec<&str> = template.lines().collect();
    lines
        .windows(2)
        .filter(|w| w[1].trim() == "Type: AWS::Serverless::Function")
        .filter_map(|w| w[0].strip_prefix("  ")?.strip_suffix(':').map(str::to_owned))
        .collect()
}

/// The binary (`BuildProperties: Binary:`) each function resource of the template builds.
fn template_binaries(template: &str) -> Vec<(String, String)> {
    template_functions(template)
        .into_iter()
        .map(|f| {
            let section = template.split(&format!("\n  {f}:\n")).nth(1).unwrap_or_default();
            let binary = section
                .lines()
                .take_while(|l| l.is_empty() || l.starts_with("   "))
                .find_map(|l| l.trim().strip_prefix("Binary: "))
                .unwrap_or_else(|| panic!("{f} names no Binary in its BuildProperties"));
            (f, binary.trim().to_owned())
        })
        .collect()
}

/// The arm64 checks (`arm64/`) on the bootstraps of `build_dir`, a `sam build` output.
fn check_arm64_bootstraps(build_dir: &Path) {
    let template = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    let binaries = template_binaries(&template);
    let bootstraps: Vec<(String, PathBuf)> =
        binaries.iter().map(|(f, b)| (b.clone(), build_dir.join(f).join("bootstrap"))).collect();
    let bootstrap = |binary: &str| {
        let (f, _) =
            binaries.iter().find(|(_, b)| b == binary).expect("a function of the template");
        build_dir.join(f).join("bootstrap")
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        arm64::check_samples(&bootstraps).await;
        arm64::check_across_architectures(bootstrap).await;
    });
}

/// `sam build`, then the arm64 checks on what it made: in one test, so the release binaries are
/// built once (the checks add about ten seconds to a build of ten minutes or more).
///
/// `sam build` runs `cargo lambda build --release --arm64 --bin X` once per function, one after
/// the other, and each fat-LTO link is single-threaded: one link after another leaves a core idle.
/// So the same command is run first with every `--bin` at once (the same features resolved, the
/// same artifacts), letting cargo link two at a time; `sam build`'s own runs then find them
/// fresh and only copy them. What is checked is still what `sam build` put in its build
/// directory.
///
/// Both commands build without LTO and with 16 codegen units (set the same way for both, so
/// the second finds the first's output fresh). Fat LTO with one codegen unit makes the
/// smallest zips, but every function is then one single-threaded whole-program optimisation:
/// with sixteen functions that was most of the suite's time (thin LTO still took 1.5-2
/// minutes a function on two cores). Without LTO the dependencies' machine code is made once
/// and each function is only linked. The zips that deploy keep the release profile and are
/// measured by `make bench`; what this test checks (the template builds, every bootstrap is
/// an arm64 binary that serves its sample events) does not depend on how they were linked.
#[test]
fn sam_build_makes_an_arm64_bootstrap_for_every_function() {
    let build_dir = std::env::temp_dir().join(format!("sam-build-{}", std::process::id()));
    let path = format!(
        "{}:{}",
        root().join(".venv/bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let template = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    let mut prebuild = Command::new("cargo");
    let no_lto =
        [("CARGO_PROFILE_RELEASE_LTO", "off"), ("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "16")];
    prebuild.args(["lambda", "build", "--release", "--arm64"]).env("PATH", &path).envs(no_lto);
    for (_, binary) in template_binaries(&template) {
        prebuild.args(["--bin", &binary]);
    }
    let started = std::time::Instant::now();
    let (ok, out) = run(&mut prebuild);
    assert!(ok, "cargo lambda build of every function at once:\n{out}");
    println!("cargo lambda build, all functions at once: {:.0?}", started.elapsed());
    let started = std::time::Instant::now();
    let (ok, out) = run(Command::new(venv_bin("sam"))
        .args(["build", "--beta-features", "--build-dir"])
        .arg(&build_dir)
        .env("PATH", path)
        .envs(no_lto));
    assert!(ok && out.contains("Build Succeeded"), "sam build:\n{out}");
    println!("sam build after it: {:.0?}", started.elapsed());
    let functions = template_functions(&template);
    assert_eq!(
        functions.len(),
        template.matches("Type: AWS::Serverless::Function").count(),
        "every function resource is found"
    );
    assert!(functions.len() >= 7, "{functions:?}");
    for f in &functions {
        let bootstrap = build_dir.join(f).join("bootstrap");
        assert_eq!(elf_machine(&bootstrap), 0xB7, "{f} is not an arm64 binary");
        let size = std::fs::metadata(&bootstrap).unwrap().len();
        println!("{f}: bootstrap {size} bytes");
    }
    let started = std::time::Instant::now();
    check_arm64_bootstraps(&build_dir);
    println!("arm64 checks under qemu: {:.0?}", started.elapsed());
    let _ = std::fs::remove_dir_all(&build_dir);
}

/// The arm64 checks alone, on the output of an earlier `make sam-build` (`.aws-sam/build`, or
/// `SAM_BUILD_DIR`), for working on them without a ten-minute build each time:
/// `cargo nextest run -p e2e --run-ignored only -E "test(kept_sam_build)"`.
#[test]
#[ignore = "needs a kept `sam build` output; the suite checks the one it builds"]
fn arm64_checks_on_a_kept_sam_build() {
    let dir = std::env::var_os("SAM_BUILD_DIR")
        .map_or_else(|| root().join(".aws-sam/build"), PathBuf::from);
    check_arm64_bootstraps(&dir);
}
