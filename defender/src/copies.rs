//! Denied programs under another name: a copy, a hard link or a memfd holding the bytes of a
//! program the deny list names is that program. The denied list's plain names and paths are
//! resolved to files once per policy; an exec'd image is compared with them only when its size
//! equals one of theirs (one `stat` per exec otherwise), and then by inode or by content.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use protect::policy::Rule;

/// Where plain names on the denied list are looked for, besides `PATH`.
const STANDARD_DIRS: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

#[derive(Debug)]
struct DeniedImage {
    path: PathBuf,
    size: u64,
    dev: u64,
    ino: u64,
}

/// The files a rule's denied list names, ready for comparison.
#[derive(Debug, Default)]
pub struct DeniedImages {
    images: Vec<DeniedImage>,
}

impl DeniedImages {
    /// Resolves the rule's denied process patterns without wildcards to existing files.
    pub fn for_rule(rule: &Rule) -> DeniedImages {
        let path_var = std::env::var("PATH").unwrap_or_default();
        let dirs: Vec<&str> = path_var
            .split(':')
            .filter(|d| !d.is_empty())
            .chain(STANDARD_DIRS.iter().copied())
            .collect();
        let mut images: Vec<DeniedImage> = Vec::new();
        for pattern in &rule.processes.denied {
            let p = pattern.as_str();
            if p.contains('*') {
                continue;
            }
            let candidates: Vec<PathBuf> = if p.starts_with('/') {
                vec![PathBuf::from(p)]
            } else {
                dirs.iter().map(|d| Path::new(d).join(p)).collect()
            };
            for c in candidates {
                let Ok(meta) = std::fs::metadata(&c) else {
                    continue;
                };
                if !meta.is_file()
                    || images
                        .iter()
                        .any(|i| i.dev == meta.dev() && i.ino == meta.ino())
                {
                    continue;
                }
                images.push(DeniedImage {
                    path: c,
                    size: meta.len(),
                    dev: meta.dev(),
                    ino: meta.ino(),
                });
            }
        }
        DeniedImages { images }
    }

    /// The denied file whose content `exe` (e.g. `/proc/PID/exe`) has, if any.
    pub fn matching(&self, exe: &Path) -> Option<&Path> {
        // A deny list that names no existing file has nothing to compare with: no `stat`.
        if self.images.is_empty() {
            return None;
        }
        let meta = std::fs::metadata(exe).ok()?;
        self.images
            .iter()
            .filter(|i| i.size == meta.len())
            .find(|i| (i.dev == meta.dev() && i.ino == meta.ino()) || same_content(&i.path, exe))
            .map(|i| i.path.as_path())
    }

    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }
}

fn same_content(a: &Path, b: &Path) -> bool {
    let (Ok(mut fa), Ok(mut fb)) = (File::open(a), File::open(b)) else {
        return false;
    };
    let mut ba = vec![0u8; 64 * 1024];
    let mut bb = vec![0u8; 64 * 1024];
    loop {
        let (Ok(na), Ok(nb)) = (read_full(&mut fa, &mut ba), read_full(&mut fb, &mut bb)) else {
            return false;
        };
        if na != nb || ba[..na] != bb[..nb] {
            return false;
        }
        if na == 0 {
            return true;
        }
    }
}

fn read_full(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        let n = f.read(&mut buf[got..])?;
        if n == 0 {
            break;
        }
        got += n;
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;
    use protect::policy::RuntimePolicy;

    #[test]
    fn copies_match_by_content_and_other_files_do_not() {
        let policy = RuntimePolicy::from_json(
            r#"{"revision":1,"rules":[{"name":"r","processes":{"effect":"prevent","denied":["mkdir","x*"]}}]}"#,
        )
        .expect("policy");
        let images = DeniedImages::for_rule(&policy.rules[0]);
        assert!(!images.is_empty());
        let dir = std::env::temp_dir().join(format!("defender-copies-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let mkdir = std::fs::canonicalize("/bin/mkdir").expect("mkdir");
        std::fs::copy(&mkdir, dir.join("innocent")).expect("copy");
        assert!(images.matching(&dir.join("innocent")).is_some());
        let rmdir = std::fs::canonicalize("/bin/rmdir").expect("rmdir");
        assert!(images.matching(&rmdir).is_none());
        // Same size, different bytes.
        let mut bytes = std::fs::read(&mkdir).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(dir.join("tweaked"), bytes).expect("write");
        assert!(images.matching(&dir.join("tweaked")).is_none());
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
