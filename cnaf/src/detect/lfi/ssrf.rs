//! Server-side request forgery by host name: a reference (`localhost/`, `http://host.docker.
//! internal:2375/`, `url=http://localhost/admin`) to a name that only resolves inside the
//! server's own network: loopback names, container and orchestrator service names, cloud
//! metadata and instance-internal names, wildcard-DNS names that spell an internal address
//! (`10.0.0.5.nip.io`). IP literals are judged in `address`.
//!
//! Levels. A container, orchestrator or cloud-internal name (`*.docker.internal`,
//! `*.svc.cluster.local`, `*.ec2.internal`) starting a value is level 1 anywhere: no browser can
//! reach it, so no legitimate client sends it. A loopback name written without a scheme and
//! followed by a path (`localhost/`, `lvh.me:8080/x`) is level 1 too: that is how a probe
//! reaches a fetcher that adds `http://` itself, while a URL a person pastes carries its scheme
//! and a database host (`db_host=localhost`) has no path. A loopback URL with a scheme
//! (`http://localhost:3000/callback`) is level 1 only in a parameter the server fetches
//! (`url`, `webhook`, `proxy`, `feed`...; see [`fetch_named`]): in redirect parameters
//! (`redirect_uri`, `return_to`, `oauth_callback`) the browser follows it, and loopback
//! redirect URIs are standard for native apps and command-line tools (RFC 8252: `gh auth
//! login` listens on `http://127.0.0.1:PORT/`) as well as for development clients, so there,
//! and in any other parameter, it passes levels 1 and 2 (level 3 flags every absolute URL).

use std::sync::LazyLock;

use aho_corasick::AhoCorasick;

use super::literals;

/// Substrings every recognised internal name contains (case-insensitive).
static NAME_HINTS: LazyLock<AhoCorasick> = LazyLock::new(|| {
    literals(&[
        "localhost",
        "loopback",
        "localtest.me",
        "lvh.me",
        ".internal",
        ".cluster.local",
        "kubernetes.default",
        ".nip.io",
        ".sslip.io",
        ".xip.io",
    ])
});

/// What an internal host name reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// The server itself (`localhost`, `ip6-loopback`, wildcard DNS to 127.0.0.1: `lvh.me`).
    Loopback,
    /// The container host, the orchestrator's services or the cloud's instance network.
    Internal,
}

/// One reference to an internal host found in a value.
#[derive(Debug, Clone, Copy)]
struct HostRef {
    reach: Reach,
    /// Written with a scheme (`http://`) or as protocol-relative `//host`.
    scheme: bool,
    /// A path follows the host (after an optional `:port`).
    path: bool,
    /// The scheme is a mail, chat or terminal protocol ([`SMUGGLING_SCHEMES`]).
    smuggling: bool,
}

/// Schemes of line-based protocols that URL fetchers (curl, PHP streams) speak and that carry
/// commands to a local service (`gopher://`, `dict://` are level-1 wrappers already). Nobody
/// browses to a mail, chat or terminal server on the loopback; data-store schemes (`redis://`,
/// `mongodb://`) are left out: connection-string forms send those to `localhost` honestly.
const SMUGGLING_SCHEMES: &[&[u8]] = &[
    b"irc", b"ircs", b"pop3", b"pop3s", b"imap", b"imaps", b"smtp", b"smtps", b"telnet", b"tftp",
    b"ftp", b"sftp", b"ldap", b"ldaps", b"rtsp", b"nntp",
];

/// Level 1, any value: a container or cloud-internal name, a scheme-less loopback name followed
/// by a path, or a loopback URL of a mail, chat or terminal protocol (`irc://localhost`).
pub(super) fn internal_reference(b: &[u8]) -> bool {
    refs(b).any(|r| r.reach == Reach::Internal || (!r.scheme && r.path) || r.smuggling)
}

/// Level 1, by parameter name: a URL to an internal or loopback host in a parameter the server
/// fetches.
pub(super) fn fetched_internal_url(name: &str, value: &str) -> bool {
    let b = value.as_bytes();
    (refs(b).any(|r| r.scheme || r.path) || loopback_ip_url(b) || single_label_url(b))
        && fetch_named(name)
}

/// Level 2, any value: `http://redis:6379/`, `http://api/internal/users`: a URL (the whole
/// value) whose host is a single label. Only the server's own resolver, through its search
/// domains or a container network's service names, can resolve a name without a dot; every
/// public host has one (`localhost` is judged above).
pub(super) fn single_label_url(b: &[u8]) -> bool {
    let t = b.trim_ascii();
    if t.len() > 2048
        || t.iter()
            .any(|c| c.is_ascii_whitespace() || matches!(c, b'"' | b'\'' | b'<'))
    {
        return false;
    }
    let Some(p) = finder!(b"://").find(t) else {
        return false;
    };
    // schemes a fetcher speaks (`gid://shop/Product/42` is an identifier, not a host)
    let scheme = &t[..p];
    let fetched = [
        &b"http"[..],
        b"https",
        b"ws",
        b"wss",
        b"ftp",
        b"ftps",
        b"gopher",
        b"dict",
    ]
    .iter()
    .chain(SMUGGLING_SCHEMES)
    .any(|s| scheme.eq_ignore_ascii_case(s));
    if !fetched {
        return false;
    }
    let host = authority_host(&t[p + 3..]);
    let host = host.split(|&c| c == b':').next().unwrap_or(host);
    !host.is_empty()
        && host.len() <= 63
        && host.iter().any(u8::is_ascii_alphabetic)
        && classify(host).is_none()
        && host
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_'))
}

/// `http://127.0.0.1:8080/`, `https://[::1]/`: a URL (the whole value) whose host is the
/// loopback address in canonical notation, which the value-only rules leave to the name.
fn loopback_ip_url(b: &[u8]) -> bool {
    let t = b.trim_ascii();
    let Some(p) = finder!(b"://").find(t) else {
        return false;
    };
    if p == 0 || p > 16 || !t[..p].iter().all(u8::is_ascii_alphanumeric) {
        return false;
    }
    super::address::loopback_redirect_host(authority_host(&t[p + 3..]))
}

/// The host (with its port) of what follows a URL's `//`: up to the path, query or fragment,
/// after any `user@`.
fn authority_host(after_slashes: &[u8]) -> &[u8] {
    let end = after_slashes
        .iter()
        .position(|&c| matches!(c, b'/' | b'?' | b'#'))
        .unwrap_or(after_slashes.len());
    let auth = &after_slashes[..end];
    auth.rsplit(|&c| c == b'@').next().unwrap_or(auth)
}

/// Words naming a parameter whose URL the server itself requests (lower case, whole words).
const FETCH_WORDS: &[&str] = &[
    "url",
    "uri",
    "link",
    "href",
    "src",
    "source",
    "dest",
    "destination",
    "target",
    "webhook",
    "hook",
    "proxy",
    "host",
    "server",
    "endpoint",
    "feed",
    "rss",
    "fetch",
    "remote",
    "download",
    "import",
    "upstream",
    "backend",
    "api",
    "ping",
    "callback",
    "notify",
    "image",
    "img",
    "avatar",
    "icon",
    "logo",
    "thumbnail",
    "preview",
    "domain",
    "site",
];

/// Words naming a parameter whose URL the browser is sent to (OAuth redirect URIs, login
/// returns): loopback there is a developer's or a native app's own machine.
const REDIRECT_WORDS: &[&str] = &[
    "redirect", "redir", "return", "returnto", "next", "continue", "goto", "back", "success",
    "cancel", "failure", "oauth", "login", "logout", "signin", "signout", "origin", "referer",
    "referrer", "cb",
];

/// Whether `name`, split into words at non-alphanumerics and lower-to-upper case changes,
/// names a fetched URL and no redirect.
fn fetch_named(name: &str) -> bool {
    let mut fetch = false;
    let mut redirect = false;
    super::remote::name_words(name, |w| {
        fetch |= FETCH_WORDS.contains(&w);
        redirect |= REDIRECT_WORDS.contains(&w);
    });
    fetch && !redirect
}

/// Every reference to an internal host that starts the value (after blanks), or an XML or HTML
/// attribute or `key=` inside it: the host may follow a scheme (`http://`), `//` and user-info.
fn refs(b: &[u8]) -> impl Iterator<Item = HostRef> + '_ {
    let hinted = b.len() <= 4096 && NAME_HINTS.is_match(b);
    let t = if hinted { b } else { &b[..0] };
    NAME_HINTS
        .find_iter(t)
        .filter_map(move |m| host_ref(t, m.start()))
}

/// The reference whose host contains `t[at..]`, if it is one.
fn host_ref(t: &[u8], at: usize) -> Option<HostRef> {
    let host_char = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_');
    let mut s = at;
    while s > 0 && host_char(t[s - 1]) {
        s -= 1;
    }
    let mut e = at;
    while e < t.len() && host_char(t[e]) {
        e += 1;
    }
    let reach = classify(&t[s..e])?;
    // what precedes the host: user-info, then `//` and a scheme
    let mut start = s;
    if start > 0 && t[start - 1] == b'@' {
        start -= 1;
        while start > 0 && !matches!(t[start - 1], b'/' | b' ' | b'"' | b'\'' | b'=' | b'@') {
            start -= 1;
        }
    }
    let scheme = start >= 2 && &t[start - 2..start] == b"//";
    let mut smuggling = false;
    if scheme {
        start -= 2;
        if start > 0 && t[start - 1] == b':' {
            let colon = start - 1;
            let mut k = colon;
            while k > 0 && (t[k - 1].is_ascii_alphanumeric() || matches!(t[k - 1], b'+' | b'-')) {
                k -= 1;
            }
            if k == colon || colon - k > 16 {
                return None;
            }
            smuggling = SMUGGLING_SCHEMES
                .iter()
                .any(|s| t[k..colon].eq_ignore_ascii_case(s));
            start = k;
        }
    }
    let opens = t[..start].iter().all(u8::is_ascii_whitespace)
        || matches!(t[start - 1], b'"' | b'\'' | b'=');
    if !opens {
        return None;
    }
    // what follows: `:port`, then a path, a query or a fragment
    let mut rest = &t[e..];
    if let Some(r) = rest.strip_prefix(b":") {
        let digits = r.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        rest = &r[digits..];
    }
    let path = matches!(rest.first(), Some(b'/' | b'?' | b'#' | b'\\'));
    // the reference is the whole value or a whole attribute / `key=` value: the URL runs to the
    // end, a quote or `&`; a URL followed by words opens a sentence (`localhost:3000/login
    // redirects in a loop`)
    let url_end = rest
        .iter()
        .position(|c| c.is_ascii_whitespace() || matches!(c, b'"' | b'\'' | b'&' | b'<'))
        .unwrap_or(rest.len());
    let tail = &rest[url_end..];
    let closes = tail.iter().all(u8::is_ascii_whitespace)
        || matches!(tail.first(), Some(b'"' | b'\'' | b'&' | b'<'));
    closes.then_some(HostRef {
        reach,
        scheme,
        path,
        smuggling,
    })
}

/// Loopback and internal host names (with an optional final dot), compared case-insensitively.
fn classify(host: &[u8]) -> Option<Reach> {
    let h = host.strip_suffix(b".").unwrap_or(host).to_ascii_lowercase();
    let h = h.as_slice();
    const LOOPBACK: &[&[u8]] = &[
        b"localhost",
        b"localhost4",
        b"localhost6",
        b"localhost.localdomain",
        b"localhost4.localdomain4",
        b"localhost6.localdomain6",
        b"ip6-localhost",
        b"ipv6-localhost",
        b"ip6-loopback",
        b"ipv6-loopback",
        b"localtest.me",
        b"lvh.me",
    ];
    // wildcard zones that resolve every name under them to the loopback address
    const LOOPBACK_ZONES: &[&[u8]] = &[b".localhost", b".localtest.me", b".lvh.me"];
    // Docker Desktop and Podman names for the host, orchestrator service names, and the cloud
    // instance-network zones (AWS `ec2.internal` / `compute.internal`, GCP `metadata.google.
    // internal`)
    const INTERNAL_ZONES: &[&[u8]] = &[
        b".docker.internal",
        b".containers.internal",
        b".cluster.local",
        b".ec2.internal",
        b".compute.internal",
        b".google.internal",
    ];
    if LOOPBACK.contains(&h) || LOOPBACK_ZONES.iter().any(|z| h.ends_with(z)) {
        return Some(Reach::Loopback);
    }
    if INTERNAL_ZONES.iter().any(|z| h.ends_with(z))
        || h == b"kubernetes.default"
        || h.starts_with(b"kubernetes.default.")
        || names_internal_ip(h)
    {
        return Some(Reach::Internal);
    }
    None
}

/// `10.0.0.5.nip.io`, `app.127.0.0.1.sslip.io`, `10-0-0-5.sslip.io`: a name in a wildcard DNS
/// zone that answers with the IPv4 address written in the name, here an internal one (the
/// host-name spelling of `http://10.0.0.5/`, which passes filters that look for IP literals).
fn names_internal_ip(h: &[u8]) -> bool {
    const ZONES: &[&[u8]] = &[b".nip.io", b".sslip.io", b".xip.io"];
    let Some(zone) = ZONES.iter().find(|z| h.ends_with(z)) else {
        return false;
    };
    let name = &h[..h.len() - zone.len()];
    let labels: Vec<&[u8]> = name.split(|&c| c == b'.').collect();
    let dotted = (labels.len() >= 4).then(|| labels[labels.len() - 4..].join(&b'.'));
    let dashed = labels.last().and_then(|l| {
        let parts: Vec<&[u8]> = l.split(|&c| c == b'-').collect();
        (parts.len() >= 4).then(|| parts[parts.len() - 4..].join(&b'.'))
    });
    [dotted, dashed].into_iter().flatten().any(|ip| {
        ip.split(|&c| c == b'.')
            .all(|p| !p.is_empty() && p.len() <= 3 && p.iter().all(u8::is_ascii_digit))
            && super::address::internal_ipv4(&ip) == Some(true)
    })
}

#[cfg(test)]
mod tests {
    use super::{fetched_internal_url, internal_reference};

    #[test]
    fn internal_names_anywhere_at_level_1() {
        for v in [
            "localhost/",
            "LOCALHOST/",
            "localhost.localdomain/",
            "localhost4/",
            "localhost4.localdomain4/",
            "ipv6-localhost/",
            "ip6-loopback/",
            "localtest.me/",
            "lvh.me/",
            "app.lvh.me:8080/admin",
            "localhost:9200/_cat/indices",
            "host.docker.internal/",
            "gateway.docker.internal/",
            "kubernetes.docker.internal/",
            "host.containers.internal/",
            "kubernetes.default.svc.cluster.local/",
            "http://host.docker.internal:2375/containers/json",
            "gopher://redis.default.svc.cluster.local:6379/_INFO",
            "http://ip-10-0-0-1.ec2.internal/",
            "kubernetes.default",
            "user:pw@host.docker.internal/x",
            "<?xml version=\"1.0\"?><root><a probe=\"localhost/\"></a></root>",
            "  localhost/server-status",
            "irc://localhost",
            "POP3://LOCALHOST:110",
            "smtp://localhost:25/",
            "ftp://lvh.me/x",
            "http://10.0.0.5.nip.io/admin",
            "https://app.127.0.0.1.sslip.io:8443/",
            "http://169-254-169-254.sslip.io/latest/meta-data/",
        ] {
            assert!(internal_reference(v.as_bytes()), "missed {v}");
        }
    }

    #[test]
    fn benign_mentions_pass_level_1() {
        for v in [
            "localhost",
            "mylocalhost",
            "http://localhost:3000/callback",
            "http://127.0.0.1:8080/",
            "example.com/",
            "run the app and open localhost/admin in a browser",
            "Use host.docker.internal to reach services on the host",
            "see http://host.docker.internal:8080/ in the docs",
            "me@localhost",
            "localhost:abc/",
            "internal.example.com/",
            "the loopback interface",
            "https://docs.docker.com/desktop/networking/",
            "lvh.me is handy",
            "localhost:3000/login redirects in a loop after the update.",
            "host.docker.internal/ does not resolve on Linux",
            "redis://localhost:6379",
            "mongodb://localhost:27017/app",
            "ws://localhost:8080/socket",
            "irc://irc.libera.chat",
            "http://8.8.8.8.nip.io/",
            "https://nip.io/",
            "http://my-app.sslip.io/",
        ] {
            assert!(!internal_reference(v.as_bytes()), "false positive {v}");
        }
    }

    #[test]
    fn fetched_parameters() {
        for (n, v) in [
            ("url", "http://localhost/"),
            ("url", "http://localhost:8080/admin"),
            ("webhook_url", "https://localhost/hook"),
            ("proxy", "http://localhost:3128"),
            ("imageUrl", "http://localhost/x.png"),
            ("feed", "http://lvh.me/rss"),
            ("callback_url", "http://localhost:9000/"),
            ("target", "//localhost/admin"),
            ("url", "http://127.0.0.1:8080/"),
            ("proxy_url", "https://[::1]/"),
            ("webhook", "http://redis:6379/"),
            ("image_url", "http://api/internal/users"),
        ] {
            assert!(fetched_internal_url(n, v), "missed {n}={v}");
        }
        for (n, v) in [
            ("redirect_uri", "http://localhost:3000/callback"),
            ("oauth_callback", "http://localhost:3000/cb"),
            ("returnUrl", "http://localhost:3000/"),
            ("next", "http://localhost/"),
            ("q", "http://localhost:3000/callback"),
            ("host", "localhost"),
            ("db_host", "localhost"),
            ("server", "localhost"),
            ("url", "https://example.com/"),
            ("url", "see localhost"),
            ("url", "https://example.com"),
            ("redirect_uri", "http://app:3000/cb"),
            ("url", "file:///x"),
        ] {
            assert!(!fetched_internal_url(n, v), "false positive {n}={v}");
        }
    }

    /// Whole requests: the parameter's name is read in queries, forms, JSON members and
    /// cookies alike; a loopback redirect URI passes, a loopback webhook does not.
    #[test]
    fn requests() {
        use crate::{inspect, policy, Action, CnafEffect, RequestParts};
        let all = policy::all(CnafEffect::Prevent);
        let json = || {
            RequestParts::new("POST", "/api")
                .header("Host", "a")
                .header("Content-Type", "application/json")
        };
        let get = |uri: &str| RequestParts::new("GET", uri).header("Host", "a");
        for (parts, body) in [
            (
                json(),
                &br#"{"webhook":{"target_url":"http://localhost:8080/"}}"#[..],
            ),
            (get("/?feed=http%3A%2F%2Flocalhost%2Frss"), b""),
            (get("/?url=localhost/"), b""),
            (get("/?x=Context(%27http://127.1.2.3/wb.xml%27)"), b""),
            (get("/?x=http://0x7f.1/"), b""),
            (
                get("/").header("Cookie", "redirect=host.docker.internal/"),
                b"",
            ),
        ] {
            let v = inspect(&parts, body, &all);
            assert_eq!(v.action(), Action::Block, "{parts:?}");
        }
        for (parts, body) in [
            (
                json(),
                &br#"{"redirect_uri":"http://localhost:8765/callback"}"#[..],
            ),
            (
                get("/authorize?redirect_uri=http%3A%2F%2F127.0.0.1%3A53682%2F"),
                b"",
            ),
            (get("/setup?db_host=localhost&server=localhost"), b""),
            (get("/?q=http%3A%2F%2Flocalhost%3A3000%2Fcallback"), b""),
        ] {
            let v = inspect(&parts, body, &all);
            assert_eq!(v.action(), Action::Allow, "{parts:?}: {v:?}");
        }
    }
}
