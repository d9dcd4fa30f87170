//! The embedded defender: supervises the app inside its container and enforces the runtime
//! policy on every program the app starts.
//!
//! - [`supervisor`]: start the app under its filter, the event loop, PID-1 duties.
//! - [`backend`]: the interception mechanisms (seccomp user notification; ptrace fallback) and
//!   the exec checks they share.
//! - [`console`]: the console client (policy polling, audit shipping with a disk spool).
//! - [`cnaf_live`]: the CNAF proxy inside the defender, its ports following the console's CNAF
//!   rule live (`DEFENDER_CNAF=console`).
//! - [`copies`]: denied programs under another name (copies, hard links, memfds).
//! - [`judge`]: the [`judge::ExecJudge`] trait deciding whether a program may run.
//! - [`exec_target`]: reading an exec's path and argv, resolving the program's names.
//! - [`tracee`]: ptrace tracee states as types.
//! - [`audit`]: audit records and sinks (`--audit-log`).
//! - [`install`]: `defender install DIR`.
//! - [`metadata`]: the ECS task metadata endpoint v4 (task ARN, family, container, image).
//! - [`net`]: network policy (DNS names, outbound connections, listening ports).
//! - [`settings_env`]: the defender's `DEFENDER_*` settings and credential, kept from the app.
//! - [`sys`]: the only module with `unsafe`: system-call wrappers and the BPF builder.
//!

pub mod audit;
pub mod backend;
pub mod cnaf_live;
pub mod console;
pub mod copies;
pub mod exec_target;
pub mod install;
pub mod judge;
pub mod metadata;
pub mod net;
pub mod say;
pub mod settings_env;
pub mod supervisor;
pub mod sys;
pub mod tracee;
