//! The resend-verification Lambda function: glue only (see lib.rs for the handler).

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let env = auth_shared::config::Env::process();
    auth_shared::lambda::run(
        resend_verification::State::from_env(&env),
        resend_verification::handle,
    )
    .await
}
