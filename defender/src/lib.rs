//! The embedded defender.
