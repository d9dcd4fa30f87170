//! Checks several detectors' tests share.

use crate::model::{Action, Attack, RequestParts};
use crate::policy::{all, CnafEffect, Protections};

/// With only `attack`'s protection on `prevent`, the request is blocked with one finding of
/// `attack` whose audit message is `message` (from 203.0.113.9); with it on `disable`, it is
/// forwarded. Returns the protections with `attack` on `prevent`, for further checks.
pub(crate) fn blocks_on_prevent_only(
    attack: Attack,
    parts: &RequestParts,
    body: &str,
    message: &str,
) -> Protections {
    let mut p = all(CnafEffect::Disable);
    let set = |p: &mut Protections, e: CnafEffect| match attack {
        Attack::Ldap => p.ldap = e,
        Attack::Graphql => p.graphql = e,
        other => unreachable!("no shared protection-switch test for {other}"),
    };
    set(&mut p, CnafEffect::Prevent);
    let v = crate::inspect(parts, body.as_bytes(), &p);
    assert_eq!(v.action(), Action::Block, "{v:?}");
    let Some(f) = v.primary() else {
        unreachable!("a block has a finding")
    };
    assert_eq!(f.attack, attack);
    // what the audit record carries: `attack` is the key, the message the description
    assert_eq!(f.attack.key(), attack.to_string());
    assert_eq!(
        protect::audit::cnaf_message(
            f.attack.describe(),
            &f.location.to_string(),
            "203.0.113.9",
            f.effect
        ),
        message
    );
    set(&mut p, CnafEffect::Disable);
    assert_eq!(
        crate::inspect(parts, body.as_bytes(), &p).action(),
        Action::Allow
    );
    set(&mut p, CnafEffect::Prevent);
    p
}

/// `count` pseudo-random values of up to `max_len - 1` bytes drawn from `alphabet` (xorshift from
/// `seed`, so a failure reproduces), read lossily as UTF-8: inputs for "never panics" tests.
pub(crate) fn random_values(
    alphabet: &[u8],
    max_len: u64,
    count: usize,
    mut seed: u64,
) -> Vec<String> {
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    (0..count)
        .map(|_| {
            let len = next() % max_len;
            let v: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            String::from_utf8_lossy(&v).into_owned()
        })
        .collect()
}

/// The lowest paranoia level at which a detector flags `v` (1 = its level-1 `detect`, 2 to 4 =
/// its `paranoid` rules), or 5 when none does.
pub(crate) fn lowest_level(
    v: &str,
    detect: fn(&str) -> bool,
    paranoid: fn(&str, crate::policy::Paranoia) -> bool,
) -> u8 {
    if detect(v) {
        return 1;
    }
    (2..=4)
        .find(|n| crate::policy::Paranoia::new(*n).is_some_and(|level| paranoid(v, level)))
        .unwrap_or(5)
}
