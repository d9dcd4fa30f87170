//! The app's `msghdr`/`mmsghdr`/`iovec` structures as copied bytes (x86_64 layout), and the
//! ancillary-data check that keeps the defender's privileges out of emulated sends.

/// `sizeof(struct msghdr)`.
pub const MSGHDR_LEN: usize = 56;
/// `sizeof(struct mmsghdr)`: a msghdr, the `msg_len` result and padding.
pub const MMSGHDR_LEN: usize = 64;
/// Offset of `msg_len` in `struct mmsghdr`.
pub const MMSG_LEN_OFFSET: usize = 56;
/// `sizeof(struct iovec)`.
pub const IOVEC_LEN: usize = 16;
/// `UIO_MAXIOV`: the most iovecs (and `sendmmsg` messages) the kernel takes.
pub const UIO_MAXIOV: usize = 1024;

/// `SO_TIMESTAMPING_OLD` and `SCM_TXTIME`: the socket-level control messages any app may pass;
/// others (`SO_MARK`, `SO_PRIORITY`) are checked by the kernel against the sender's capabilities,
/// which for an emulated send would be the defender's.
const SAFE_SOCKET_CMSGS: [i32; 2] = [37, 61];

fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[off..off + 8]);
    u64::from_ne_bytes(w)
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[off..off + 4]);
    u32::from_ne_bytes(w)
}

/// A `struct msghdr` read from the app: pointers stay pointers into its memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsgHdr {
    pub name: u64,
    pub namelen: u32,
    pub iov: u64,
    pub iovlen: u64,
    pub control: u64,
    pub controllen: u64,
}

impl MsgHdr {
    /// Parses the first [`MSGHDR_LEN`] bytes of `b` (`None` when shorter).
    pub fn parse(b: &[u8]) -> Option<MsgHdr> {
        if b.len() < MSGHDR_LEN {
            return None;
        }
        Some(MsgHdr {
            name: u64_at(b, 0),
            namelen: u32_at(b, 8),
            iov: u64_at(b, 16),
            iovlen: u64_at(b, 24),
            control: u64_at(b, 32),
            controllen: u64_at(b, 40),
        })
    }
}

/// One `struct iovec`: (base, len).
pub fn parse_iovecs(b: &[u8]) -> Vec<(u64, u64)> {
    b.chunks_exact(IOVEC_LEN)
        .map(|c| (u64_at(c, 0), u64_at(c, 8)))
        .collect()
}

/// Whether the ancillary data holds socket-level messages that need `CAP_NET_ADMIN` or
/// `CAP_NET_RAW` (the defender then checks that the app itself has one).
pub fn needs_privilege(control: &[u8]) -> bool {
    const HDR: usize = 16;
    let mut off = 0;
    while off + HDR <= control.len() {
        let len = u64_at(control, off) as usize;
        let level = u32_at(control, off + 8) as i32;
        let ty = u32_at(control, off + 12) as i32;
        if level == libc::SOL_SOCKET && !SAFE_SOCKET_CMSGS.contains(&ty) {
            return true;
        }
        if len < HDR {
            break;
        }
        off += len.div_ceil(8) * 8;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msghdr_fields_at_their_offsets() {
        let mut b = vec![0u8; 56];
        b[0..8].copy_from_slice(&0x1000u64.to_ne_bytes());
        b[8..12].copy_from_slice(&16u32.to_ne_bytes());
        b[16..24].copy_from_slice(&0x2000u64.to_ne_bytes());
        b[24..32].copy_from_slice(&2u64.to_ne_bytes());
        b[32..40].copy_from_slice(&0x3000u64.to_ne_bytes());
        b[40..48].copy_from_slice(&24u64.to_ne_bytes());
        let m = MsgHdr::parse(&b).unwrap();
        assert_eq!(
            m,
            MsgHdr {
                name: 0x1000,
                namelen: 16,
                iov: 0x2000,
                iovlen: 2,
                control: 0x3000,
                controllen: 24
            }
        );
        assert_eq!(MsgHdr::parse(&b[..55]), None);
    }

    #[test]
    fn iovecs_are_pairs() {
        let mut b = Vec::new();
        for (p, l) in [(1u64, 2u64), (3, 4)] {
            b.extend_from_slice(&p.to_ne_bytes());
            b.extend_from_slice(&l.to_ne_bytes());
        }
        assert_eq!(parse_iovecs(&b), vec![(1, 2), (3, 4)]);
    }

    fn cmsg(level: i32, ty: i32, data: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&((16 + data.len()) as u64).to_ne_bytes());
        b.extend_from_slice(&level.to_ne_bytes());
        b.extend_from_slice(&ty.to_ne_bytes());
        b.extend_from_slice(data);
        while b.len() % 8 != 0 {
            b.push(0);
        }
        b
    }

    #[test]
    fn socket_level_control_messages_need_privilege_except_timestamps() {
        let mut ok = cmsg(libc::IPPROTO_IP, libc::IP_TTL, &[64, 0, 0, 0]);
        ok.extend(cmsg(libc::SOL_SOCKET, 37, &[0; 4]));
        assert!(!needs_privilege(&ok));
        let mut bad = cmsg(libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT, &[1, 0, 0, 0]);
        bad.extend(cmsg(libc::SOL_SOCKET, libc::SO_MARK, &[1, 0, 0, 0]));
        assert!(needs_privilege(&bad));
        assert!(!needs_privilege(&[]));
    }
}
