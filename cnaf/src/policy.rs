//! The per-protection effect map the inspector needs: the CNAF policy model of
//! `protect::cnaf_policy`, re-exported, plus a constructor for uniform maps.

pub use protect::cnaf_policy::{CnafEffect, CnafPolicy, CnafRule, Protections, DEFAULT_BODY_LIMIT};

/// Every protection set to `effect`.
pub fn all(effect: CnafEffect) -> Protections {
    Protections {
        sqli: effect,
        xss: effect,
        cmdi: effect,
        code_injection: effect,
        lfi: effect,
        attack_tools: effect,
        shellshock: effect,
        malformed: effect,
    }
}
