//! Kernel features the defender requests where the kernel has them, and which of them it may
//! request at all.
//!
//! Fargate's platform 1.4.0 runs a 5.10-series kernel; the newer features below are requested
//! and the defender falls back when the kernel refuses them. So that CI, on a newer kernel,
//! also runs the code every Fargate task runs today, the test-only setting
//! `DEFENDER_ASSUME_KERNEL=MAJOR.MINOR` (e.g. `5.10`) makes the defender never request a
//! feature newer than that version: it then takes exactly the path it takes on such a kernel.
//! The real kernel is still what answers; nothing is faked after the fact.

use std::sync::OnceLock;

/// The test-only setting (not in `--help`).
pub const ASSUME_ENV: &str = "DEFENDER_ASSUME_KERNEL";

/// The features, with the kernel version that brought each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Features {
    /// `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV` (5.19): a received notification waits only for
    /// fatal signals.
    pub wait_killable_recv: bool,
    /// `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP` (6.6): the notifying thread and the defender hand
    /// the CPU to each other.
    pub sync_wake_up: bool,
}

/// `(feature, major, minor)`: where each feature appeared.
pub const INTRODUCED: &[(&str, u32, u32)] = &[
    ("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", 5, 19),
    ("SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP", 6, 6),
];

impl Features {
    /// Every feature may be requested (the default: the kernel decides).
    pub const ALL: Features = Features {
        wait_killable_recv: true,
        sync_wake_up: true,
    };

    /// The features a kernel of version `major.minor` has.
    pub fn of_version(major: u32, minor: u32) -> Features {
        let at_least = |m: u32, n: u32| (major, minor) >= (m, n);
        Features {
            wait_killable_recv: at_least(5, 19),
            sync_wake_up: at_least(6, 6),
        }
    }
}

/// Parses `MAJOR.MINOR` (a patch level is ignored).
pub fn parse_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.trim().split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// The assumed version, if [`ASSUME_ENV`] names one. Read once, before the app starts.
pub fn assumed() -> Option<(u32, u32)> {
    static ASSUMED: OnceLock<Option<(u32, u32)>> = OnceLock::new();
    *ASSUMED.get_or_init(|| {
        let text = std::env::var(ASSUME_ENV).ok()?;
        let parsed = parse_version(&text);
        if parsed.is_none() {
            crate::say!(
                "defender: ignoring {ASSUME_ENV}={text:?}: expected MAJOR.MINOR such as 5.10"
            );
        }
        parsed
    })
}

/// The features the defender may request.
pub fn requested() -> Features {
    match assumed() {
        Some((major, minor)) => Features::of_version(major, minor),
        None => Features::ALL,
    }
}

/// The running kernel's release (`uname -r`).
pub fn release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_decide_the_features() {
        let old = Features::of_version(5, 10);
        assert!(!old.wait_killable_recv && !old.sync_wake_up);
        let mid = Features::of_version(5, 19);
        assert!(mid.wait_killable_recv && !mid.sync_wake_up);
        assert_eq!(Features::of_version(6, 6), Features::ALL);
        assert_eq!(Features::of_version(6, 18), Features::ALL);
        assert_eq!(parse_version("5.10"), Some((5, 10)));
        assert_eq!(parse_version("5.10.220-amzn2"), Some((5, 10)));
        assert_eq!(parse_version(" 6.6.1 "), Some((6, 6)));
        assert_eq!(parse_version("five"), None);
        // The table and `of_version` agree.
        for (name, major, minor) in INTRODUCED {
            let before = Features::of_version(*major, minor - 1);
            let at = Features::of_version(*major, *minor);
            assert_ne!(before, at, "{name}");
        }
    }
}
