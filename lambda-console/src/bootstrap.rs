//! The first administrator of an empty store.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use protect::api::Role;
use rand_core::{OsRng, RngCore};

use crate::auth::hash_password_blocking;
use crate::routes::users::{check_password, check_username};
use crate::state::AppState;
use crate::store::UserRecord;

/// What [`ensure_admin`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Bootstrap {
    /// Users exist already; nothing was done.
    UsersExist,
    /// The admin was created with the given password.
    Created { username: String },
    /// The admin was created with a generated password, to be shown once.
    Generated { username: String, password: String },
    /// No users and no password given, and generating one is not allowed (Lambda).
    NoPassword,
}

/// Why bootstrap failed.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("CONSOLE_ADMIN_USER / CONSOLE_ADMIN_PASSWORD: {0}")]
    Invalid(String),
    #[error("creating the first admin failed: {0}")]
    Store(String),
}

/// Creates `username` as admin when the store has no user. With no `password`, one is
/// generated if `may_generate`.
pub async fn ensure_admin(
    state: &AppState,
    username: &str,
    password: Option<String>,
    may_generate: bool,
) -> Result<Bootstrap, BootstrapError> {
    if state
        .store()
        .has_users()
        .await
        .map_err(|e| BootstrapError::Store(e.to_string()))?
    {
        return Ok(Bootstrap::UsersExist);
    }
    check_username(username).map_err(|e| BootstrapError::Invalid(e.to_string()))?;
    let (password, generated) = match password {
        Some(p) => {
            check_password(&p).map_err(|e| BootstrapError::Invalid(e.to_string()))?;
            (p, false)
        }
        None if may_generate => {
            let mut bytes = [0u8; 18];
            OsRng.fill_bytes(&mut bytes);
            (URL_SAFE_NO_PAD.encode(bytes), true)
        }
        None => return Ok(Bootstrap::NoPassword),
    };
    let hash = hash_password_blocking(state.settings().argon2.clone(), password.clone())
        .await
        .map_err(|e| BootstrapError::Store(e.to_string()))?;
    let created = state
        .store()
        .create_user(UserRecord {
            username: username.to_string(),
            password_hash: hash,
            role: Role::Admin,
        })
        .await
        .map_err(|e| BootstrapError::Store(e.to_string()))?;
    if !created {
        // Another instance won the race; its admin stands.
        return Ok(Bootstrap::UsersExist);
    }
    Ok(if generated {
        Bootstrap::Generated {
            username: username.to_string(),
            password,
        }
    } else {
        Bootstrap::Created {
            username: username.to_string(),
        }
    })
}
