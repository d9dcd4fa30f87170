//! The defender's own argument and environment blocks: the strings the kernel copied to the top
//! of the main thread's stack at `execve`, which `/proc/PID/cmdline` and `/proc/PID/environ`
//! show for as long as the process lives. `std::env::remove_var` only drops glibc's pointer to
//! a variable; taking a secret out of those files means overwriting its bytes in place.

use std::io;

use super::SysError;

/// One of the two blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Block {
    /// `argv` strings (`/proc/PID/cmdline`).
    Arguments,
    /// `envp` strings (`/proc/PID/environ`).
    Environment,
}

impl Block {
    /// Fields of `/proc/PID/stat` (1-based, see proc(5)) holding its start and end.
    fn stat_fields(self) -> (usize, usize) {
        match self {
            Block::Arguments => (48, 49),
            Block::Environment => (50, 51),
        }
    }
}

fn failed(op: &'static str, why: String) -> SysError {
    SysError::Failed {
        op,
        error: io::Error::other(why),
    }
}

/// `[start, end)` of `block`, from the text of `/proc/self/stat`.
fn bounds(stat: &str, block: Block) -> Option<(usize, usize)> {
    // Fields after the parenthesised command (which may hold spaces and parentheses) start at
    // field 3.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let (s, e) = block.stat_fields();
    let start = fields.get(s - 3)?.parse().ok()?;
    let end = fields.get(e - 3)?.parse().ok()?;
    (start < end).then_some((start, end))
}

/// Whether `[start, end)` lies inside one readable and writable private mapping of
/// `/proc/self/maps`.
fn inside_writable_mapping(maps: &str, start: usize, end: usize) -> bool {
    maps.lines().any(|line| {
        let mut f = line.split_whitespace();
        let (Some(range), Some(perms)) = (f.next(), f.next()) else {
            return false;
        };
        let Some((lo, hi)) = range.split_once('-') else {
            return false;
        };
        let (Ok(lo), Ok(hi)) = (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
        else {
            return false;
        };
        perms.starts_with("rw") && perms.ends_with('p') && lo <= start && end <= hi
    })
}

/// Runs `f` on the bytes of this process's `block`, writable; what it writes is what
/// `/proc/PID/cmdline` or `/proc/PID/environ` shows from then on.
///
/// Call it while no other thread may read the block, i.e. before the defender starts any
/// thread: glibc's `environ` and Rust's saved `argv` point into it.
pub fn rewrite<R>(block: Block, f: impl FnOnce(&mut [u8]) -> R) -> Result<R, SysError> {
    let op = match block {
        Block::Arguments => "rewrite the argument block",
        Block::Environment => "rewrite the environment block",
    };
    let read =
        |path: &str| std::fs::read_to_string(path).map_err(|error| SysError::Failed { op, error });
    let (start, end) = bounds(&read("/proc/self/stat")?, block)
        .ok_or_else(|| failed(op, "/proc/self/stat has no bounds for it".into()))?;
    if !inside_writable_mapping(&read("/proc/self/maps")?, start, end) {
        return Err(failed(
            op,
            format!("{start:#x}-{end:#x} is not inside one writable private mapping"),
        ));
    }
    // SAFETY: the kernel reports [start, end) as this process's own argument or environment
    // strings, and /proc/self/maps shows the whole range inside one readable, writable, private
    // mapping (the main thread's stack), which stays mapped for the life of the process. No
    // Rust reference to these bytes exists: std and glibc keep raw pointers into them (saved
    // argv, `environ`), and the caller guarantees no other thread reads them while `f` runs.
    let bytes = unsafe { std::slice::from_raw_parts_mut(start as *mut u8, end - start) };
    Ok(f(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_come_from_fields_48_to_51_even_with_a_tricky_command_name() {
        // 52 fields; the command holds a space and a parenthesis.
        let mut fields: Vec<String> = (3..=52).map(|n| n.to_string()).collect();
        fields[48 - 3] = "1000".into();
        fields[49 - 3] = "2000".into();
        fields[50 - 3] = "2000".into();
        fields[51 - 3] = "3000".into();
        let stat = format!("42 (a) b) {}", fields.join(" "));
        assert_eq!(bounds(&stat, Block::Arguments), Some((1000, 2000)));
        assert_eq!(bounds(&stat, Block::Environment), Some((2000, 3000)));
        assert_eq!(bounds("42 (x) S 1", Block::Environment), None);
    }

    #[test]
    fn only_a_writable_private_mapping_holding_the_whole_range_will_do() {
        let maps = "7ffd0000-7ffe0000 rw-p 00000000 00:00 0 [stack]\n\
                    10000-20000 r--p 00000000 00:00 0 /bin/x\n\
                    30000-40000 rw-s 00000000 00:00 0 /dev/shm/y\n";
        assert!(inside_writable_mapping(maps, 0x7ffd_0100, 0x7ffd_0200));
        assert!(!inside_writable_mapping(maps, 0x7ffd_ff00, 0x7ffe_0100));
        assert!(!inside_writable_mapping(maps, 0x10100, 0x10200));
        assert!(!inside_writable_mapping(maps, 0x30100, 0x30200));
    }

    #[test]
    fn this_process_blocks_hold_its_arguments_and_environment() {
        let first_arg = std::env::args().next().expect("argv[0]");
        let args = rewrite(Block::Arguments, |b| b.to_vec()).expect("arguments");
        assert!(args.starts_with(first_arg.as_bytes()), "{args:?}");
        let env = rewrite(Block::Environment, |b| b.to_vec()).expect("environment");
        let on_file = std::fs::read("/proc/self/environ").expect("environ");
        assert_eq!(env, on_file);
    }
}
