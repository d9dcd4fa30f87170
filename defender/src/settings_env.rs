//! The defender's own settings, kept from the app it supervises.
//!
//! The defender is configured by `DEFENDER_*` variables (the console URL, the console
//! credential `DEFENDER_TOKEN`, the scope, the CNAF ports, the state directory, the startup
//! mode...; see the clap `env =` attributes and `protect::embed::ENV_*`), set in the app
//! container's environment by `deploy-protected`. The app is assumed hostile, so:
//!
//! - the app starts without any `DEFENDER_*` variable ([`app_environment`]). None is kept:
//!   nothing in the app needs to know how its defender is configured, and the prefix is the
//!   defender's, so a setting added later is covered without a list to maintain;
//! - after parsing them, the defender takes them out of its own environment and overwrites
//!   their bytes in its environment block, and overwrites the value of `--token` in its
//!   argument block ([`scrub`]): `/proc/PID/cmdline` is readable by every process, whatever
//!   the defender's dumpable flag.
//!
//! The rest of the protection is elsewhere: the defender is not dumpable (`main`), so the app
//! cannot open its `/proc/PID/environ` or `/proc/PID/mem` (where the credential still lives,
//! in the console client), and the app runs without `CAP_SYS_PTRACE`, which would override
//! that (`sys::spawn`).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use crate::sys::own_blocks::{self, Block};
use crate::sys::SysError;

/// Names of the defender's settings start with this.
pub const SETTINGS_PREFIX: &str = "DEFENDER_";

/// Flags whose value is a secret (the console credential, when given as a flag).
pub const SECRET_FLAGS: &[&str] = &["--token"];

/// Whether the variable `name` is one of the defender's settings.
pub fn is_setting(name: &OsStr) -> bool {
    name.as_bytes().starts_with(SETTINGS_PREFIX.as_bytes())
}

/// The environment the app starts with: the defender's own, minus its settings.
pub fn app_environment() -> impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)> {
    std::env::vars_os().filter(|(k, _)| !is_setting(k))
}

/// Overwrites with NUL bytes every `NAME=value` string of `block` (NUL-separated, as
/// `/proc/PID/environ`) whose name is a setting; returns how many.
pub fn wipe_settings(block: &mut [u8]) -> usize {
    let mut wiped = 0;
    for entry in block.split_mut(|&b| b == 0) {
        if entry.starts_with(SETTINGS_PREFIX.as_bytes()) {
            entry.fill(0);
            wiped += 1;
        }
    }
    wiped
}

/// Overwrites with `*` the value of every secret flag in `block` (NUL-separated arguments, as
/// `/proc/PID/cmdline`): `--token VALUE` and `--token=VALUE`, up to a `--` that ends the
/// defender's own arguments (what follows is the app's command line); returns how many.
pub fn wipe_secret_flags(block: &mut [u8]) -> usize {
    let mut wiped = 0;
    let mut next_is_secret = false;
    for arg in block.split_mut(|&b| b == 0) {
        if next_is_secret {
            arg.fill(b'*');
            wiped += 1;
            next_is_secret = false;
            continue;
        }
        if arg == b"--" {
            break;
        }
        for flag in SECRET_FLAGS {
            let flag = flag.as_bytes();
            if arg == flag {
                next_is_secret = true;
            } else if arg.starts_with(flag) && arg.get(flag.len()) == Some(&b'=') {
                arg[flag.len() + 1..].fill(b'*');
                wiped += 1;
            }
        }
    }
    wiped
}

/// What [`scrub`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Scrubbed {
    /// Settings taken out of the environment.
    pub variables: usize,
    /// Secret flag values overwritten on the command line.
    pub flag_values: usize,
}

/// Why [`scrub`] could not finish. The settings are out of the environment the app gets either
/// way; this is about the defender's own `/proc/PID/environ` and `/proc/PID/cmdline`.
#[derive(Debug, thiserror::Error)]
pub enum ScrubError {
    #[error(
        "cannot overwrite the DEFENDER_* settings in the defender's /proc/PID/environ \
         (still unreadable to the app: the defender is not dumpable)"
    )]
    Environment(#[source] SysError),
    #[error(
        "cannot overwrite the --token value in the defender's /proc/PID/cmdline, which any \
         process can read; pass the credential as DEFENDER_TOKEN instead"
    )]
    Arguments(#[source] SysError),
}

/// Takes the settings out of this process's environment and overwrites them in its
/// environment block; overwrites secret flag values in its argument block.
///
/// Call once, after the settings were parsed and before the defender starts any thread
/// (`std::env::remove_var` and the block rewrite race with readers in other threads).
pub fn scrub() -> Result<Scrubbed, ScrubError> {
    let names: Vec<_> = std::env::vars_os()
        .map(|(k, _)| k)
        .filter(|k| is_setting(k))
        .collect();
    for name in &names {
        std::env::remove_var(name);
    }
    own_blocks::rewrite(Block::Environment, wipe_settings).map_err(ScrubError::Environment)?;
    let flag_values =
        own_blocks::rewrite(Block::Arguments, wipe_secret_flags).map_err(ScrubError::Arguments)?;
    Ok(Scrubbed {
        variables: names.len(),
        flag_values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_the_defender_prefix_only() {
        for name in [
            "DEFENDER_TOKEN",
            "DEFENDER_CONSOLE_URL",
            "DEFENDER_",
            "DEFENDER_NEW",
        ] {
            assert!(is_setting(OsStr::new(name)), "{name}");
        }
        for name in [
            "PATH",
            "MY_DEFENDER_TOKEN",
            "defender_token",
            "DEFENDER",
            "XDEFENDER_A",
        ] {
            assert!(!is_setting(OsStr::new(name)), "{name}");
        }
    }

    #[test]
    fn every_setting_the_defender_reads_or_the_transform_writes_has_the_prefix() {
        use protect::embed::*;
        for name in [
            ENV_CONSOLE_URL,
            ENV_TASK_FAMILY,
            ENV_CONTAINER_NAME,
            ENV_IMAGE,
            ENV_TOKEN,
            ENV_CNAF_LISTEN,
            ENV_CNAF_UPSTREAM,
            ENV_CNAF,
            ENV_STARTUP,
            crate::console::ENV_POLL_SECONDS,
            crate::console::ENV_STATE_DIR,
            crate::console::ENV_STARTUP_TIMEOUT,
            crate::sys::kernel::ASSUME_ENV,
        ] {
            assert!(is_setting(OsStr::new(name)), "{name}");
        }
        // The binary's clap `env = ...` attributes (cli.rs, console_run.rs) name those
        // constants, never a string of their own.
        let src = concat!(include_str!("cli.rs"), include_str!("console_run.rs"));
        assert!(src.matches("env = ").count() >= 10);
        assert!(
            !src.contains("env = \""),
            "a clap env attribute spells its variable out"
        );
    }

    #[test]
    fn settings_are_zeroed_in_place_and_the_rest_kept() {
        let mut block =
            b"PATH=/bin\0DEFENDER_TOKEN=s3cret\0HOME=/root\0DEFENDER_STARTUP=security\0".to_vec();
        let len = block.len();
        assert_eq!(wipe_settings(&mut block), 2);
        assert_eq!(block.len(), len);
        let kept: Vec<&[u8]> = block.split(|&b| b == 0).filter(|e| !e.is_empty()).collect();
        assert_eq!(kept, [&b"PATH=/bin"[..], b"HOME=/root"]);
        assert!(!block.windows(6).any(|w| w == b"s3cret"));
    }

    #[test]
    fn token_values_are_starred_in_both_spellings_but_not_in_the_apps_arguments() {
        let mut block =
            b"defender\0run\0--token\0abc\0--token=xyz\0--tokens\0q\0--\0app\0--token\0mine\0"
                .to_vec();
        assert_eq!(wipe_secret_flags(&mut block), 2);
        assert_eq!(
            block,
            b"defender\0run\0--token\0***\0--token=***\0--tokens\0q\0--\0app\0--token\0mine\0"
        );
        let mut last = b"defender\0--token".to_vec();
        assert_eq!(wipe_secret_flags(&mut last), 0);
    }
}
