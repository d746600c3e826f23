//! The rotate-key Lambda function: glue only (see lib.rs). Its events come from Secrets
//! Manager, not HTTP, so it runs lambda_runtime directly.

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let env = auth_shared::config::Env::process();
    rotate_key::run(rotate_key::State::from_env(&env).await).await
}
