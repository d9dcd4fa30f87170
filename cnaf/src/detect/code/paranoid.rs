//! The code injection rules of paranoia levels 2 to 4.

use crate::policy::Paranoia;

/// The code injection rules of paranoia levels 2 to 4 (the inspector calls this only above
/// level 1; [`super::detect`] holds the level-1 rules).
pub fn paranoid(_value: &str, _level: Paranoia) -> bool {
    false
}
