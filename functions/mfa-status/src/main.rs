//! The mfa-status Lambda function: glue only (see lib.rs for the handler).

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let env = auth_shared::config::Env::process();
    auth_shared::lambda::run(mfa_status::State::from_env(&env), mfa_status::handle).await
}
