//! The defender's lines on stderr.
//!
//! The defender shares stderr with the app it supervises (the container's log stream), and
//! `eprintln!` writes each formatted piece of a line with its own `write(2)`, so a line the app
//! writes at the same moment can land in the middle of an audit line
//! (`defender: /bin/entry.sh: 4: mkdir: Permission denied` followed by the rest of the audit).
//! [`say!`](crate::say) formats the whole line first and hands it to the kernel in one
//! `write(2)`: on a pipe (how container runtimes collect logs) a write of up to `PIPE_BUF`
//! (4 KiB) bytes is never interleaved with another writer's.

use std::io::Write;

/// Writes `line` and a newline to stderr in one write (errors are ignored, as `eprintln!`
/// would panic on them and a broken log stream must not stop the defender).
pub fn line(args: std::fmt::Arguments<'_>) {
    let _ = write_line(&mut std::io::stderr().lock(), args);
}

/// Formats `args` and a newline, then writes them with a single `write_all` (one `write(2)` on
/// an unbuffered stream unless the kernel takes less, which a pipe does not below `PIPE_BUF`).
fn write_line(out: &mut impl Write, args: std::fmt::Arguments<'_>) -> std::io::Result<()> {
    let mut text = args.to_string();
    text.push('\n');
    out.write_all(text.as_bytes())
}

/// `eprintln!` for the defender: the whole line in one `write(2)` (see the module docs).
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::say::line(format_args!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    use super::write_line;
    use std::io::Write;

    /// Records every `write` call it gets, as the kernel would see them.
    #[derive(Default)]
    struct Writes(Vec<Vec<u8>>);

    impl Write for Writes {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_formatted_line_reaches_the_stream_in_one_write() {
        let mut w = Writes::default();
        let (effect, rule, what) = ("prevent", "sample", "/bin/mkdir launched");
        write_line(&mut w, format_args!("defender: {effect} ({rule}): {what}")).unwrap();
        assert_eq!(
            w.0,
            vec![b"defender: prevent (sample): /bin/mkdir launched\n".to_vec()]
        );
        // what eprintln! does on the same stream: one write per piece, which another process
        // writing to the same pipe can split
        let mut pieces = Writes::default();
        writeln!(pieces, "defender: {effect} ({rule}): {what}").unwrap();
        assert!(pieces.0.len() > 1);
    }
}
