//! The mailer Lambda function: glue only (see lib.rs). Its events come from SQS, not HTTP,
//! so it runs lambda_runtime directly.

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let env = auth_shared::config::Env::process();
    mailer::run(mailer::State::from_env(&env).await).await
}
