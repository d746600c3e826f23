//! The passkey-login-options Lambda function: glue only (see lib.rs for the handler).

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let env = auth_shared::config::Env::process();
    auth_shared::lambda::run(
        passkey_login_options::State::from_env(&env),
        passkey_login_options::handle,
    )
    .await
}
