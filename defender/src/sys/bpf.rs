//! A typed builder for the classic BPF programs seccomp runs.
//!
//! seccompiler (the usual crate) cannot emit `SECCOMP_RET_USER_NOTIF`, so the defender builds its
//! short, straight-line programs here: load a field of `struct seccomp_data`, compare, return an
//! action. Jumps are always "skip the next instruction", which keeps every offset correct by
//! construction.

use libc::sock_filter;

/// x86_64's `AUDIT_ARCH_X86_64` (EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE).
pub const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
/// Syscall numbers with this bit set are the x32 ABI.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

const BPF_LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const BPF_JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const BPF_JGE_K: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const BPF_JSET_K: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const BPF_RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

/// Offsets in `struct seccomp_data`.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const fn off_arg_low(n: u32) -> u32 {
    16 + 8 * n
}

/// What the filter does with a syscall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Allow,
    /// Fail the syscall with this errno.
    Errno(u16),
    /// Ask the user-space listener.
    Notify,
    /// Stop for the ptrace tracer (`PTRACE_EVENT_SECCOMP`), with this data value.
    Trace(u16),
    /// Kill the whole process.
    KillProcess,
}

impl Action {
    fn ret(self) -> u32 {
        match self {
            Action::Allow => libc::SECCOMP_RET_ALLOW,
            Action::Errno(e) => libc::SECCOMP_RET_ERRNO | u32::from(e),
            Action::Notify => libc::SECCOMP_RET_USER_NOTIF,
            Action::Trace(d) => libc::SECCOMP_RET_TRACE | u32::from(d),
            Action::KillProcess => libc::SECCOMP_RET_KILL_PROCESS,
        }
    }
}

/// One rule of the filter, checked in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// `nr == syscall` → action.
    Syscall { nr: u32, action: Action },
    /// `nr == syscall && (low 32 bits of argument `arg`) & mask != 0` → action.
    SyscallArgMask {
        nr: u32,
        arg: u32,
        mask: u32,
        action: Action,
    },
    /// `nr == syscall && argument `arg` == value` (all 64 bits) → action.
    SyscallArgEq {
        nr: u32,
        arg: u32,
        value: u64,
        action: Action,
    },
}

/// Builds the program: reject foreign architectures and the x32 ABI, then the rules, then
/// `default`. The program is at most a few dozen instructions.
pub fn program(rules: &[Rule], default: Action) -> Vec<sock_filter> {
    let mut p = Vec::with_capacity(8 + rules.len() * 5);
    // Architecture: anything but x86_64 (e.g. i386 via `int 0x80`) is killed.
    p.push(stmt(BPF_LD_W_ABS, OFF_ARCH));
    p.push(jump(BPF_JEQ_K, AUDIT_ARCH_X86_64, 1, 0));
    p.push(stmt(BPF_RET_K, Action::KillProcess.ret()));
    // x32 ABI: same audit arch, syscall number with bit 30 set.
    p.push(stmt(BPF_LD_W_ABS, OFF_NR));
    p.push(jump(BPF_JGE_K, X32_SYSCALL_BIT, 0, 1));
    p.push(stmt(BPF_RET_K, Action::KillProcess.ret()));
    for rule in rules {
        match *rule {
            Rule::Syscall { nr, action } => {
                p.push(jump(BPF_JEQ_K, nr, 0, 1));
                p.push(stmt(BPF_RET_K, action.ret()));
            }
            Rule::SyscallArgMask {
                nr,
                arg,
                mask,
                action,
            } => {
                // nr match → load arg, test mask, maybe return; reload nr either way.
                p.push(jump(BPF_JEQ_K, nr, 0, 4));
                p.push(stmt(BPF_LD_W_ABS, off_arg_low(arg)));
                p.push(jump(BPF_JSET_K, mask, 0, 1));
                p.push(stmt(BPF_RET_K, action.ret()));
                p.push(stmt(BPF_LD_W_ABS, OFF_NR));
            }
            Rule::SyscallArgEq {
                nr,
                arg,
                value,
                action,
            } => {
                p.push(jump(BPF_JEQ_K, nr, 0, 6));
                p.push(stmt(BPF_LD_W_ABS, off_arg_low(arg)));
                p.push(jump(BPF_JEQ_K, value as u32, 0, 3));
                p.push(stmt(BPF_LD_W_ABS, off_arg_low(arg) + 4));
                p.push(jump(BPF_JEQ_K, (value >> 32) as u32, 0, 1));
                p.push(stmt(BPF_RET_K, action.ret()));
                p.push(stmt(BPF_LD_W_ABS, OFF_NR));
            }
        }
    }
    p.push(stmt(BPF_RET_K, default.ret()));
    p
}

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// Runs `prog` on a `seccomp_data` the way the kernel would: a tiny interpreter so the filter's
/// logic is unit-tested without installing it.
pub fn evaluate(prog: &[sock_filter], nr: u32, arch: u32, args: [u64; 6]) -> u32 {
    let word = |off: u32| -> u32 {
        match off {
            OFF_NR => nr,
            OFF_ARCH => arch,
            o if (16..64).contains(&o) => {
                let i = ((o - 16) / 8) as usize;
                if (o - 16) % 8 == 0 {
                    args[i] as u32
                } else {
                    (args[i] >> 32) as u32
                }
            }
            _ => 0,
        }
    };
    let (mut acc, mut pc) = (0u32, 0usize);
    while let Some(ins) = prog.get(pc) {
        pc += 1;
        match ins.code {
            BPF_LD_W_ABS => acc = word(ins.k),
            BPF_RET_K => return ins.k,
            BPF_JEQ_K | BPF_JGE_K | BPF_JSET_K => {
                let taken = match ins.code {
                    BPF_JEQ_K => acc == ins.k,
                    BPF_JGE_K => acc >= ins.k,
                    _ => acc & ins.k != 0,
                };
                pc += usize::from(if taken { ins.jt } else { ins.jf });
            }
            _ => return libc::SECCOMP_RET_KILL_PROCESS,
        }
    }
    libc::SECCOMP_RET_KILL_PROCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<sock_filter> {
        program(
            &[
                Rule::Syscall {
                    nr: 59,
                    action: Action::Notify,
                },
                Rule::SyscallArgMask {
                    nr: 317,
                    arg: 1,
                    mask: 8,
                    action: Action::Errno(1),
                },
                Rule::Syscall {
                    nr: 101,
                    action: Action::Errno(1),
                },
            ],
            Action::Allow,
        )
    }

    #[test]
    fn foreign_arch_and_x32_are_killed() {
        let p = sample();
        assert_eq!(
            evaluate(&p, 59, 0x4000_0003, [0; 6]),
            libc::SECCOMP_RET_KILL_PROCESS
        );
        assert_eq!(
            evaluate(&p, 59 | X32_SYSCALL_BIT, AUDIT_ARCH_X86_64, [0; 6]),
            libc::SECCOMP_RET_KILL_PROCESS
        );
    }

    #[test]
    fn rules_apply_in_order_and_default_allows() {
        let p = sample();
        assert_eq!(
            evaluate(&p, 59, AUDIT_ARCH_X86_64, [0; 6]),
            libc::SECCOMP_RET_USER_NOTIF
        );
        assert_eq!(
            evaluate(&p, 101, AUDIT_ARCH_X86_64, [0; 6]),
            libc::SECCOMP_RET_ERRNO | 1
        );
        assert_eq!(
            evaluate(&p, 0, AUDIT_ARCH_X86_64, [0; 6]),
            libc::SECCOMP_RET_ALLOW
        );
    }

    #[test]
    fn argument_equality_compares_both_halves() {
        let p = program(
            &[
                Rule::SyscallArgEq {
                    nr: 44,
                    arg: 4,
                    value: 0,
                    action: Action::Allow,
                },
                Rule::Syscall {
                    nr: 44,
                    action: Action::Notify,
                },
            ],
            Action::Allow,
        );
        let arch = AUDIT_ARCH_X86_64;
        assert_eq!(
            evaluate(&p, 44, arch, [3, 1, 1, 0, 0, 0]),
            libc::SECCOMP_RET_ALLOW
        );
        assert_eq!(
            evaluate(&p, 44, arch, [3, 1, 1, 0, 0x7fff_0000, 0]),
            libc::SECCOMP_RET_USER_NOTIF
        );
        assert_eq!(
            evaluate(&p, 44, arch, [3, 1, 1, 0, 1 << 40, 0]),
            libc::SECCOMP_RET_USER_NOTIF
        );
    }

    #[test]
    fn argument_masks_only_match_when_the_bit_is_set() {
        let p = sample();
        let with = [1, 8 | 2, 0, 0, 0, 0];
        let without = [1, 2, 0, 0, 0, 0];
        assert_eq!(
            evaluate(&p, 317, AUDIT_ARCH_X86_64, with),
            libc::SECCOMP_RET_ERRNO | 1
        );
        assert_eq!(
            evaluate(&p, 317, AUDIT_ARCH_X86_64, without),
            libc::SECCOMP_RET_ALLOW
        );
        // The rule after the masked one still sees the syscall number.
        assert_eq!(
            evaluate(&p, 101, AUDIT_ARCH_X86_64, without),
            libc::SECCOMP_RET_ERRNO | 1
        );
    }
}
