//! `defender install DIR`: copy the running defender binary into a shared volume for the app
//! containers, atomically (write a temporary file, fsync, rename), mode 0755.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The installed file's name inside DIR.
pub const BINARY_NAME: &str = "defender";

/// Why installing failed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("cannot create the install directory {dir}: {source}")]
    CreateDir { dir: PathBuf, source: io::Error },
    #[error("cannot read the running defender binary (/proc/self/exe): {0}")]
    ReadSelf(#[source] io::Error),
    #[error("cannot write {path}: {source}; is the directory writable (not a read-only mount)?")]
    Write { path: PathBuf, source: io::Error },
}

/// Copies the running executable to `DIR/defender` and returns that path.
pub fn install_self(dir: &Path) -> Result<PathBuf, InstallError> {
    let me = std::env::current_exe().map_err(InstallError::ReadSelf)?;
    install_file(&me, dir)
}

/// Copies `source` to `DIR/defender` atomically with mode 0755.
pub fn install_file(source: &Path, dir: &Path) -> Result<PathBuf, InstallError> {
    fs::create_dir_all(dir).map_err(|source| InstallError::CreateDir {
        dir: dir.to_path_buf(),
        source,
    })?;
    let target = dir.join(BINARY_NAME);
    let tmp = dir.join(format!(".{BINARY_NAME}.tmp.{}", std::process::id()));
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| InstallError::Write { path, source }
    };
    let mut input = File::open(source).map_err(InstallError::ReadSelf)?;
    let result = (|| {
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o755)
            .open(&tmp)?;
        io::copy(&mut input, &mut out)?;
        out.set_permissions(fs::Permissions::from_mode(0o755))?;
        out.sync_all()?;
        fs::rename(&tmp, &target)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(write_err(&target))?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installs_an_identical_executable_copy() {
        let dir = std::env::temp_dir().join(format!("defender-install-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let src = std::env::current_exe().expect("test exe");
        let path = install_file(&src, &dir.join("nested")).expect("install");
        assert_eq!(
            fs::read(&path).expect("read copy"),
            fs::read(&src).expect("read source")
        );
        assert_eq!(
            fs::metadata(&path).expect("meta").permissions().mode() & 0o777,
            0o755
        );
        // Installing again replaces the file and leaves no temporary behind.
        install_file(&src, &dir.join("nested")).expect("reinstall");
        let names: Vec<_> = fs::read_dir(dir.join("nested"))
            .expect("list")
            .filter_map(|e| e.ok())
            .collect();
        assert_eq!(names.len(), 1);
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn unwritable_target_names_the_path() {
        let err = install_file(
            Path::new("/proc/self/exe"),
            Path::new("/proc/defender-nope"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("/proc/defender-nope"), "{err}");
    }
}
