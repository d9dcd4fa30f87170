//! The network holder: a `FROM scratch` image whose only file is a 129-byte static x86-64
//! program that calls pause(2) forever. Fargate's awsvpc gives all containers of a task one
//! network namespace; locally the holder owns it (started with `--network none`, or the
//! `--network` asked for) and every task container joins it with `--network container:`.
//! Its lifetime is the task's, whatever order the task's own containers exit in.
//!
//! The image is built once per Docker Engine with the legacy builder (works offline, no
//! registry) and reused; nothing is pulled.

use super::docker::Docker;
use super::error::LocalError;
use std::path::PathBuf;

/// The holder image's tag; the version changes whenever the program bytes change.
pub const PAUSE_IMAGE: &str = "deploy-protected-local/pause:1";

/// Load address of the program's single segment.
const BASE: u64 = 0x40_0000;
/// ELF header + one program header.
const HEADERS: usize = 64 + 56;

/// `pause: mov eax, 34 (SYS_pause); syscall; jmp pause`.
const CODE: [u8; 9] = [0xb8, 0x22, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xeb, 0xf7];

/// The holder program: a minimal static ELF64 x86-64 executable.
pub fn pause_elf() -> Vec<u8> {
    let total = (HEADERS + CODE.len()) as u64;
    let mut b = Vec::with_capacity(HEADERS + CODE.len());
    // e_ident: magic, 64-bit, little endian, version 1, System V ABI, padding.
    b.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(&2u16.to_le_bytes()); // e_type: EXEC
    b.extend_from_slice(&0x3eu16.to_le_bytes()); // e_machine: x86-64
    b.extend_from_slice(&1u32.to_le_bytes()); // e_version
    b.extend_from_slice(&(BASE + HEADERS as u64).to_le_bytes()); // e_entry
    b.extend_from_slice(&64u64.to_le_bytes()); // e_phoff
    b.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    b.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    b.extend_from_slice(&64u16.to_le_bytes()); // e_ehsize
    b.extend_from_slice(&56u16.to_le_bytes()); // e_phentsize
    b.extend_from_slice(&1u16.to_le_bytes()); // e_phnum
    b.extend_from_slice(&64u16.to_le_bytes()); // e_shentsize
    b.extend_from_slice(&0u16.to_le_bytes()); // e_shnum
    b.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx
                                              // Program header: one PT_LOAD, read + execute, the whole file at BASE.
    b.extend_from_slice(&1u32.to_le_bytes()); // p_type: LOAD
    b.extend_from_slice(&5u32.to_le_bytes()); // p_flags: R X
    b.extend_from_slice(&0u64.to_le_bytes()); // p_offset
    b.extend_from_slice(&BASE.to_le_bytes()); // p_vaddr
    b.extend_from_slice(&BASE.to_le_bytes()); // p_paddr
    b.extend_from_slice(&total.to_le_bytes()); // p_filesz
    b.extend_from_slice(&total.to_le_bytes()); // p_memsz
    b.extend_from_slice(&0x1000u64.to_le_bytes()); // p_align
    b.extend_from_slice(&CODE);
    b
}

/// Builds [`PAUSE_IMAGE`] unless the engine already has it.
pub fn ensure_image(docker: &Docker) -> Result<(), LocalError> {
    if docker.image_exists(PAUSE_IMAGE) {
        return Ok(());
    }
    let fail = |message: String| LocalError::PauseImage {
        image: PAUSE_IMAGE.into(),
        message,
    };
    let arch = docker.server_arch()?;
    if arch != "x86_64" && arch != "amd64" {
        return Err(fail(format!(
            "the Docker Engine runs on {arch}; the holder program exists for x86-64 only"
        )));
    }
    let dir = context_dir();
    std::fs::create_dir_all(&dir).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
    let result = write_context(&dir)
        .map_err(|e| fail(format!("{}: {e}", dir.display())))
        .and_then(|()| {
            docker
                .build(&dir, PAUSE_IMAGE)
                .map_err(|e| fail(e.to_string()))
        });
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn context_dir() -> PathBuf {
    std::env::temp_dir().join(format!("deploy-protected-pause-{}", std::process::id()))
}

fn write_context(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let program = dir.join("pause");
    std::fs::write(&program, pause_elf())?;
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755))?;
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM scratch\nCOPY pause /pause\nENTRYPOINT [\"/pause\"]\n",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holder_program_runs_until_killed() {
        if !cfg!(target_arch = "x86_64") {
            panic!("the holder program is x86-64; run this test on x86-64");
        }
        let dir = std::env::temp_dir().join(format!("dp-pause-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write_context(&dir).unwrap();
        let mut child = std::process::Command::new(dir.join("pause"))
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(child.try_wait().unwrap().is_none(), "pause exited early");
        child.kill().unwrap();
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9));
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(pause_elf().len(), 129);
    }
}
