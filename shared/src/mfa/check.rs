//! Checking a second-factor answer (a TOTP code or a recovery code) for an account, under the
//! locks of [`crate::mfa`]'s module docs, and counting a wrong one.

use serde::Deserialize;
use tokio_postgres::GenericClient;
use uuid::Uuid;

use super::{recovery, sealed, store, totp};
use crate::data_key::DataKey;
use crate::http::{self, ApiError};

/// What the user gave: a TOTP code or a recovery code.
#[derive(Clone)]
pub enum Answer {
    /// Six digits from the authenticator app.
    Totp(String),
    /// A recovery code, as typed.
    Recovery(String),
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Totp(_) => "Answer::Totp(..)",
            Self::Recovery(_) => "Answer::Recovery(..)",
        })
    }
}

/// The members a body gives its answer in; unknown members are ignored.
#[derive(Deserialize, Default)]
pub struct AnswerMembers {
    /// `code`: a TOTP code.
    #[serde(default, deserialize_with = "http::present_string")]
    pub code: Option<String>,
    /// `recovery_code`.
    #[serde(default, deserialize_with = "http::present_string")]
    pub recovery_code: Option<String>,
}

impl AnswerMembers {
    /// Exactly one of `code` and `recovery_code` (`recovery` says whether the route takes a
    /// recovery code at all). A code of the wrong shape (letters, spaces, 5 or 7 digits, other
    /// scripts' digits) is 400 `invalid_code`, as a wrong one is; both members, or none, 400
    /// `invalid_request`.
    pub fn answer(self, recovery: bool) -> Result<Answer, ApiError> {
        let invalid = |why: &str| ApiError::InvalidRequest(why.to_owned());
        match (self.code, self.recovery_code) {
            (Some(_), Some(_)) => Err(invalid("Give either code or recovery_code, not both.")),
            (None, None) if recovery => Err(invalid("Give code or recovery_code.")),
            (None, None) => Err(invalid("Give the code from the authenticator app.")),
            (None, Some(_)) if !recovery => {
                Err(invalid("This route takes a code from the authenticator app."))
            }
            (Some(code), None) if totp::is_code(&code) => Ok(Answer::Totp(code)),
            (Some(_), None) => Err(ApiError::InvalidCode),
            (None, Some(code)) => {
                recovery::canonical(&code).map(Answer::Recovery).ok_or(ApiError::InvalidCode)
            }
        }
    }
}

/// What checking an answer came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// A right TOTP code, for a step not used before (now recorded as used).
    Totp,
    /// A right, unused recovery code (now used).
    Recovery,
    /// Wrong (or replayed, or no such factor).
    Wrong,
    /// The stored secret does not open: refused, not counted (one error line was logged).
    Garbled,
}

/// What an answer is checked against: the active factor, or the unused recovery codes (hash,
/// key version), read with their row locks.
enum Held {
    Factor(Option<store::Factor>),
    Codes(Vec<(Vec<u8>, String)>),
}

/// A right answer's use, not yet recorded.
enum Use {
    Step(u64),
    Code(Vec<u8>),
}

async fn lock_held(
    c: &impl GenericClient,
    user: Uuid,
    answer: &Answer,
) -> Result<Held, tokio_postgres::Error> {
    Ok(match answer {
        Answer::Totp(_) => Held::Factor(store::lock_factor(c, user, false).await?),
        Answer::Recovery(_) => Held::Codes(store::lock_codes(c, user).await?),
    })
}

/// Compares `answer` with what is held (no database work): `Ok(Some(use))` when right,
/// `Ok(None)` when wrong (or replayed, or no such factor), `Err(())` when the secret does not
/// open.
async fn judge(
    keys: &DataKey,
    user: Uuid,
    answer: &Answer,
    held: Held,
    now: u64,
) -> Result<Option<Use>, ()> {
    match (answer, held) {
        (Answer::Totp(code), Held::Factor(Some(factor))) => {
            Ok(step_for(keys, user, &factor, code, now).await?.map(Use::Step))
        }
        (Answer::Recovery(code), Held::Codes(codes)) => {
            let mut found = None;
            for (hash, version) in codes {
                // Every unused code is compared, whichever matches.
                if let Some(v) = keys.version(&version).await
                    && recovery::matches(&v, user, code, &hash)
                    && found.is_none()
                {
                    found = Some(hash);
                }
            }
            Ok(found.map(Use::Code))
        }
        _ => Ok(None),
    }
}

async fn record_use(
    c: &impl GenericClient,
    user: Uuid,
    used: &Use,
) -> Result<Checked, tokio_postgres::Error> {
    Ok(match used {
        Use::Step(step) => {
            store::use_step(c, user, *step).await?;
            Checked::Totp
        }
        Use::Code(hash) => {
            store::use_code(c, user, hash).await?;
            Checked::Recovery
        }
    })
}

/// Checks `answer` against the account's active factor or its unused recovery codes, taking
/// their row locks (until the transaction ends), and records the step or code as used when
/// right. `now` is Unix seconds.
///
/// # Errors
/// The database's.
pub async fn check(
    c: &impl GenericClient,
    keys: &DataKey,
    user: Uuid,
    answer: &Answer,
    now: u64,
) -> Result<Checked, tokio_postgres::Error> {
    let held = lock_held(c, user, answer).await?;
    match judge(keys, user, answer, held, now).await {
        Ok(Some(used)) => record_use(c, user, &used).await,
        Ok(None) => Ok(Checked::Wrong),
        Err(()) => Ok(Checked::Garbled),
    }
}

/// The step `code` is right for on `factor`, `Ok(None)` when wrong, `Err` when the secret does
/// not open (logged here, once).
pub async fn step_for(
    keys: &DataKey,
    user: Uuid,
    factor: &store::Factor,
    code: &str,
    now: u64,
) -> Result<Option<u64>, ()> {
    let opened = match keys.version(&factor.key_version).await {
        Some(v) => sealed::open(&v, user, &factor.sealed).map_err(|e| e.to_string()),
        None => Err(format!("data key version {:?} is not readable", factor.key_version)),
    };
    match opened {
        Ok(secret) => Ok(totp::matching_step(&secret, code, now, factor.last_step)),
        Err(why) => {
            tracing::error!(user_id = %user, reason = %why, "a stored TOTP secret does not open; refusing its codes");
            Err(())
        }
    }
}

/// What a second-factor step came to (see [`step`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Right: a TOTP code (`Checked::Totp`) or a recovery code (`Checked::Recovery`), now used.
    Passed(Checked),
    /// Wrong, and counted; `failures` is the login throttle's new count.
    Wrong {
        /// The account's consecutive failures now.
        failures: i32,
    },
    /// Refused unchecked: the login throttle, or (for a TOTP code) the daily lock.
    Locked {
        /// Whole seconds to wait.
        retry_after: u64,
    },
    /// The stored secret does not open: refused, not counted.
    Garbled,
}

impl Step {
    /// The answer to a step that did not pass, with its log line (`at` names the route's step in
    /// the `mfa_failed` event): 429 `too_many_attempts` with `Retry-After` when locked, otherwise
    /// 400 `invalid_code` (a garbled secret has logged its own line already). `None` for
    /// [`Step::Passed`].
    #[must_use]
    pub fn refusal(&self, user: Uuid, at: &'static str) -> Option<ApiError> {
        match *self {
            Self::Passed(_) => None,
            Self::Locked { retry_after } => {
                tracing::warn!(event = "login_throttled", user_id = %user, retry_after, "login_throttled");
                Some(ApiError::TooManyAttempts { retry_after })
            }
            Self::Wrong { failures } => {
                tracing::warn!(
                    event = "mfa_failed",
                    user_id = %user,
                    failures,
                    locked_for_s = crate::throttle::lock_seconds(failures),
                    step = at,
                    "mfa_failed"
                );
                Some(ApiError::InvalidCode)
            }
            Self::Garbled => Some(ApiError::InvalidCode),
        }
    }
}

/// One second-factor step for `user`, with the account's attempt lock held (`key`, from
/// [`crate::throttle::lock_account`]): refused while the login throttle locks the account, or
/// while the daily count locks the second step (a recovery code still passes: it is the way
/// out of that lock); otherwise the answer is checked ([`check`]), a right one clears the
/// daily count and a wrong one is counted ([`count_wrong`]).
///
/// # Errors
/// The database's.
pub async fn step(
    c: &impl GenericClient,
    keys: &DataKey,
    user: Uuid,
    key: &str,
    answer: &Answer,
) -> Result<Step, tokio_postgres::Error> {
    // The three reads go out together (pipelined on the one connection, run in this order
    // by the server): the throttle, the daily lock, the factor's or codes' rows and locks.
    let totp = matches!(answer, Answer::Totp(_));
    let (throttle, daily, held) = tokio::try_join!(
        crate::throttle::status(c, key),
        async { if totp { store::daily_lock(c, user).await } else { Ok(None) } },
        lock_held(c, user, answer),
    )?;
    if let crate::throttle::Status::Locked { retry_after } = throttle {
        return Ok(Step::Locked { retry_after });
    }
    if let Some(retry_after) = daily {
        return Ok(Step::Locked { retry_after });
    }
    Ok(match judge(keys, user, answer, held, unix_now()).await {
        Ok(Some(used)) => {
            let (passed, ()) =
                tokio::try_join!(record_use(c, user, &used), store::clear_daily(c, user))?;
            Step::Passed(passed)
        }
        Ok(None) => Step::Wrong { failures: count_wrong(c, key, user).await? },
        Err(()) => Step::Garbled,
    })
}

/// Counts a wrong answer: in the account's login throttle (under its attempt lock, which the
/// caller holds: `key`) and in the daily count. Returns the throttle's new count.
///
/// # Errors
/// The database's.
pub async fn count_wrong(
    c: &impl GenericClient,
    key: &str,
    user: Uuid,
) -> Result<i32, tokio_postgres::Error> {
    let ((), failures) = tokio::try_join!(
        store::count_daily_failure(c, user),
        crate::throttle::record_failure(c, key)
    )?;
    Ok(failures)
}

/// The Unix time now, in seconds.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(code: Option<&str>, recovery_code: Option<&str>) -> AnswerMembers {
        AnswerMembers {
            code: code.map(str::to_owned),
            recovery_code: recovery_code.map(str::to_owned),
        }
    }

    #[test]
    fn an_answer_is_one_code_of_the_right_shape() {
        assert!(matches!(members(Some("123456"), None).answer(true), Ok(Answer::Totp(_))));
        assert!(matches!(
            members(None, Some("abcde-fghjk")).answer(true),
            Ok(Answer::Recovery(c)) if c == "ABCDEFGHJK"
        ));
        for (code, rec, want) in [
            (Some("123456"), Some("abcde-fghjk"), "invalid_request"),
            (None, None, "invalid_request"),
            (Some("12345"), None, "invalid_code"),
            (Some("1234567"), None, "invalid_code"),
            (Some("123 456"), None, "invalid_code"),
            (Some("12345a"), None, "invalid_code"),
            (Some("١٢٣٤٥٦"), None, "invalid_code"),
            (Some(""), None, "invalid_code"),
            (None, Some("short"), "invalid_code"),
        ] {
            let got = members(code, rec).answer(true).unwrap_err();
            assert_eq!(got.code(), want, "{code:?} {rec:?}");
        }
        let got = members(None, Some("abcde-fghjk")).answer(false).unwrap_err();
        assert_eq!(got.code(), "invalid_request");
    }
}
