//! The per-protection effect map the inspector needs: the CNAF policy model of
//! `protect::cnaf_policy`, re-exported, plus a constructor for uniform maps.

pub use protect::cnaf_policy::{
    CnafEffect, CnafPolicy, CnafRule, Paranoia, Protections, DEFAULT_BODY_LIMIT,
};

/// Every protection set to `effect`, at the default paranoia level.
pub fn all(effect: CnafEffect) -> Protections {
    Protections::all(effect)
}
