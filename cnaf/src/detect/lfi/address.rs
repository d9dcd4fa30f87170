//! Remote inclusion by address: URLs whose host is an IP literal in any notation, an internal
//! address or a cloud metadata host, URLs of special schemes written without `//`, authorities
//! that URL parsers disagree on, and the `?` / NUL trailers that cut an include path short.

/// `http://10.1.2.3/shell.txt`, `ftp://1.2.3.4/x?`: remote file inclusion by IP address, or
/// a URL ending in `?` (the classic RFI trailer that discards the rest of the include path).
pub(super) fn remote_by_ip(n: &[u8]) -> bool {
    for p in finder!(b"://").find_iter(n) {
        // the scheme: letters right before `://`
        let mut s = p;
        while s > 0 && (n[s - 1].is_ascii_alphanumeric() || matches!(n[s - 1], b'+' | b'-' | b'.'))
        {
            s -= 1;
        }
        if s == p || p - s > 12 {
            continue;
        }
        let host = &n[p + 3..];
        let host_end = host
            .iter()
            .position(|&c| matches!(c, b'/' | b'?' | b'#' | b' ' | b'"' | b'\''))
            .unwrap_or(host.len());
        let h = &host[..host_end];
        // drop user-info and port
        let h = h.rsplit(|&c| c == b'@').next().unwrap_or(h);
        let starts = s == 0 || matches!(n[s - 1], b'=' | b' ' | b'"' | b'\'' | b'>' | b'(');
        let web = whole_web_url(n, s, p);
        if starts
            && (ip_literal(h) || metadata_host(h) || h.contains(&b'\\'))
            && !(web && loopback_redirect_host(h))
        {
            return true;
        }
        // `http://a.com:80 &@127.1.2.3:22/`, `http://a.com#@10.0.0.1/`: an authority with blanks,
        // `#` or `&` before a later `@` — URL parsers disagree on which host it names, so each
        // `@host` candidate counts
        let auth_end = host
            .iter()
            .take(256)
            .position(|&c| c == b'/')
            .unwrap_or(host.len().min(256));
        let authority = &host[..auth_end];
        if starts
            && authority.iter().any(|c| matches!(c, b' ' | b'#' | b'&'))
            && authority.split(|&c| c == b'@').skip(1).any(|cand| {
                let end = cand
                    .iter()
                    .position(|&c| matches!(c, b' ' | b'#' | b'&' | b'?'))
                    .unwrap_or(cand.len());
                let c = &cand[..end];
                !c.is_empty() && (ip_literal(c) || metadata_host(c))
            })
        {
            return true;
        }
        // `http://x/y?`, `http://x/y.txt%00`: the classic trailers that discard the rest of an
        // include path
        if s == 0 && (n.ends_with(b"?") || n.ends_with(b"\0")) && !n.contains(&b' ') {
            return true;
        }
    }
    false
}

/// An `http(s)` URL that is the whole value, as a redirect URI is sent: the scheme `n[s..p]`
/// opens the value and nothing but the URL follows (no blank, quote, parenthesis or `<`). A
/// loopback host there is judged by the parameter's name ([`loopback_redirect_host`]), at every
/// level.
pub(super) fn whole_web_url(n: &[u8], s: usize, p: usize) -> bool {
    s == 0
        && (n[..p].eq_ignore_ascii_case(b"http") || n[..p].eq_ignore_ascii_case(b"https"))
        && !n[p..]
            .iter()
            .any(|c| c.is_ascii_whitespace() || matches!(c, b'\'' | b'"' | b'(' | b')' | b'<'))
}

/// `127.0.0.1:53682`, `[::1]:8080`: the loopback address as native apps and command-line tools
/// write it in an OAuth redirect URI (RFC 8252 prefers the IP literal to `localhost`), in
/// canonical notation. Such an `http(s)` URL is judged by its parameter's name instead
/// (`ssrf::fetched_internal_url`); obfuscated spellings (`0x7f.1`, `2130706433`) still count.
pub(super) fn loopback_redirect_host(h: &[u8]) -> bool {
    let host = if let Some(v6) = h.strip_prefix(b"[") {
        return v6.starts_with(b"::1]");
    } else {
        h.split(|&c| c == b':').next().unwrap_or(h)
    };
    let parts: Vec<&[u8]> = host.split(|&c| c == b'.').collect();
    parts.len() == 4
        && parts[0] == b"127"
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.len() <= 3
                && p.iter().all(u8::is_ascii_digit)
                && (p.len() == 1 || p[0] != b'0')
        })
}

/// `http:2852039166`, `http:/0xA9FEA9FE`, `http:[::ffff:a9fe:a9fe]`: a URL of a special scheme
/// written without `//`. URL parsers that follow WHATWG read the authority anyway, so these name
/// an IP address (or a metadata host) while filters looking for `://` see none.
pub(super) fn slashless_url_to_ip(b: &[u8]) -> bool {
    slashless_host(b).is_some_and(|h| {
        h.first() == Some(&b'[')
            || internal_ipv4(h).unwrap_or(false)
            || metadata_host(&h.to_ascii_lowercase())
    })
}

/// Level 2: `http:123456789`, `http:0x7f.1`, `https:8.8.8.8`: a URL of a special scheme written
/// without `//` whose host is a routable IPv4 address in any `inet_aton` notation. A number
/// below 2^24 reads as an address in 0.0.0.0/8, which names no host: `http:8080` and `https:443`
/// (how configurations pair a scheme with its port) and `http:0xABCDEF` pass.
pub(super) fn slashless_url_to_number(b: &[u8]) -> bool {
    slashless_host(b)
        .and_then(ipv4)
        .is_some_and(|ip| ip >= 1 << 24)
}

/// The host (with its port) of a URL of a special scheme written without `//`
/// (`http:host`, `http:/host`), user-info dropped; `None` for any other value.
fn slashless_host(b: &[u8]) -> Option<&[u8]> {
    const SCHEMES: [&[u8]; 7] = [
        b"http:", b"https:", b"ftp:", b"ws:", b"wss:", b"gopher:", b"dict:",
    ];
    let t = b.trim_ascii_start();
    let scheme = SCHEMES
        .iter()
        .find(|s| t.len() > s.len() && t[..s.len()].eq_ignore_ascii_case(s))?;
    let mut rest = &t[scheme.len()..];
    if rest.starts_with(b"//") || rest.starts_with(b"\\\\") {
        return None; // an ordinary URL, judged elsewhere
    }
    if matches!(rest.first(), Some(b'/' | b'\\')) {
        rest = &rest[1..];
    }
    let end = rest
        .iter()
        .position(|&c| matches!(c, b'/' | b'?' | b'#' | b' ' | b'\\'))
        .unwrap_or(rest.len());
    let h = &rest[..end];
    let h = h.rsplit(|&c| c == b'@').next().unwrap_or(h);
    (!h.is_empty()).then_some(h)
}

/// Whether `h` (`host[:port]`), read the way `inet_aton` reads it — one to four parts, each
/// decimal, `0x` hex or `0`-led octal, the last part filling the remaining bytes — is an internal
/// IPv4 address: this host (0.0.0.0, 127/8), private (10/8, 172.16/12, 192.168/16), link-local with
/// the cloud metadata service (169.254/16) or carrier-grade NAT (100.64/10). `None` when `h` is
/// not numeric.
pub(super) fn internal_ipv4(h: &[u8]) -> Option<bool> {
    let ip = ipv4(h)?;
    let [a, b, ..] = ip.to_be_bytes();
    Some(
        matches!(
            (a, b),
            (127 | 10, _) | (172, 16..=31) | (192, 168) | (169, 254) | (100, 64..=127)
        ) || ip == 0,
    )
}

/// `h` (`host[:port]`) read as an IPv4 address the way `inet_aton` reads it; `None` when it is
/// not numeric.
fn ipv4(h: &[u8]) -> Option<u32> {
    let host = match h.iter().position(|&c| c == b':') {
        Some(c) => &h[..c],
        None => h,
    };
    let text = std::str::from_utf8(host).ok()?;
    let parts: Vec<&str> = text.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut nums = Vec::with_capacity(4);
    for p in &parts {
        let lower = p.to_ascii_lowercase();
        let n = if let Some(x) = lower.strip_prefix("0x") {
            u64::from_str_radix(x, 16).ok()?
        } else if lower.len() > 1 && lower.starts_with('0') {
            u64::from_str_radix(&lower[1..], 8).ok()?
        } else {
            lower.parse::<u64>().ok()?
        };
        nums.push(n);
    }
    let last = nums.len() - 1;
    let mut ip: u64 = 0;
    for (k, n) in nums.iter().enumerate() {
        if k < last {
            if *n > 255 {
                return None;
            }
            ip |= n << (24 - 8 * k);
        } else {
            let room = 32 - 8 * k as u32;
            if *n >= 1u64 << room {
                return None;
            }
            ip |= n;
        }
    }
    u32::try_from(ip).ok()
}

/// A host written as an IP address in any notation a resolver accepts: dotted quad, bare
/// decimal (`2852039166`), hex (`0xA9FEA9FE`, `0xa9.0xfe.0xa9.0xfe`), octal (`0177.0.0.1`),
/// short forms (`169.254.43518`), IPv6 (`[::ffff:a9fe:a9fe]`).
pub(super) fn ip_literal(h: &[u8]) -> bool {
    if h.first() == Some(&b'[') {
        return true;
    }
    let host = match h.iter().rposition(|&c| c == b':') {
        // `host:port` (an IPv6 literal without brackets has several colons)
        Some(c) if h.iter().filter(|&&x| x == b':').count() == 1 => &h[..c],
        Some(_) => return true,
        None => h,
    };
    if host.is_empty() {
        return false;
    }
    let parts: Vec<&[u8]> = host.split(|&c| c == b'.').collect();
    let numeric = |p: &&[u8]| {
        !p.is_empty()
            && (p.iter().all(u8::is_ascii_digit)
                || (p.len() > 2
                    && p[..2].eq_ignore_ascii_case(b"0x")
                    && p[2..].iter().all(u8::is_ascii_hexdigit)))
    };
    parts.len() <= 4 && parts.iter().all(numeric)
}

pub(super) fn metadata_host(h: &[u8]) -> bool {
    const HOSTS: &[&[u8]] = &[
        b"metadata.google.internal",
        b"metadata.packet.net",
        b"metadata.azure.com",
        b"169.254.169.254",
        b"100.100.100.200",
        b"instance-data",
    ];
    HOSTS
        .iter()
        .any(|m| h.eq_ignore_ascii_case(m) || h.starts_with(m))
}
