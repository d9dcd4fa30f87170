//! Just enough ELF reading to tell a static executable from a dynamic one.

/// The `PT_INTERP` program interpreter of a 64-bit little-endian ELF file, if it has one.
pub fn elf_interpreter(bytes: &[u8]) -> Result<Option<String>, String> {
    const PT_INTERP: u32 = 3;
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" {
        return Err("no ELF header".into());
    }
    if bytes[4] != 2 || bytes[5] != 1 {
        return Err("not a 64-bit little-endian ELF file".into());
    }
    let u16_at = |o: usize| -> Result<u16, String> {
        bytes
            .get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .ok_or_else(|| "truncated".to_string())
    };
    let u32_at = |o: usize| -> Result<u32, String> {
        bytes
            .get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| "truncated".to_string())
    };
    let u64_at = |o: usize| -> Result<u64, String> {
        let b = bytes.get(o..o + 8).ok_or_else(|| "truncated".to_string())?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    };
    let phoff = usize::try_from(u64_at(0x20)?).map_err(|e| e.to_string())?;
    let phentsize = usize::from(u16_at(0x36)?);
    let phnum = usize::from(u16_at(0x38)?);
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        if u32_at(ph)? == PT_INTERP {
            let off = usize::try_from(u64_at(ph + 8)?).map_err(|e| e.to_string())?;
            let size = usize::try_from(u64_at(ph + 32)?).map_err(|e| e.to_string())?;
            let raw = bytes.get(off..off + size).ok_or("truncated interpreter")?;
            let name = String::from_utf8_lossy(raw)
                .trim_end_matches('\0')
                .to_string();
            return Ok(Some(name));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::elf_interpreter;

    #[test]
    fn a_dynamic_system_binary_has_an_interpreter() {
        let bytes = std::fs::read("/bin/sh").expect("/bin/sh exists");
        let interp = elf_interpreter(&bytes).expect("valid ELF");
        assert!(interp.is_some_and(|i| i.contains("ld-linux")));
    }

    #[test]
    fn garbage_is_not_elf() {
        assert_eq!(elf_interpreter(b"#!/bin/sh\n"), Err("no ELF header".into()));
        let mut truncated = b"\x7fELF\x02\x01".to_vec();
        truncated.resize(64, 0);
        truncated[0x38] = 1; // one program header, beyond the end of the file
        truncated[0x20] = 200;
        assert_eq!(elf_interpreter(&truncated), Err("truncated".into()));
    }
}
