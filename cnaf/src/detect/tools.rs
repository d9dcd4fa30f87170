//! Attack tools and scanners (by the names they announce in `User-Agent` and the headers some
//! add, and by the out-of-band interaction domains their payloads call back to), and Shellshock
//! function definitions.

use std::sync::LazyLock;

use aho_corasick::AhoCorasick;

use super::literals;

/// Names scanners and exploitation tools put in `User-Agent`.
static AGENTS: LazyLock<AhoCorasick> = LazyLock::new(|| {
    literals(&[
        "sqlmap",
        "nikto",
        "nmap",
        "masscan",
        "zgrab",
        "nuclei",
        "wpscan",
        "dirbuster",
        "gobuster",
        "feroxbuster",
        "ffuf",
        "fuzz faster u fool",
        "wfuzz",
        "openvas",
        "nessus",
        "acunetix",
        "netsparker",
        "invicti",
        "appscan",
        "webinspect",
        "w3af",
        "arachni",
        "havij",
        "hydra",
        "jaeles",
        "commix",
        "xsstrike",
        "whatweb",
        "skipfish",
        "paros",
        "zmeu",
        "morfeus",
        "sysscan",
        "bsqlbf",
        "mysqloit",
        "pangolin",
        "webshag",
        "sqlninja",
        "metasploit",
        "jorgee",
        "fimap",
        "dotdotpwn",
        "interactsh",
        "droopescan",
        "joomscan",
        "cmsmap",
        "wapiti",
        "vega/",
        "brutus",
        ".nasl",
        "openvas-vt",
        "qualys",
        "burp collaborator",
        "dirb/",
        "(dirb",
        "nuclei -",
        "zap/",
        "owasp zap",
        "teh forest lobster",
        "grendel-scan",
        "black widow",
        "n-stealth",
        "absinthe",
        "x-scan",
        "webvulnscan",
        "crimscanner",
    ])
});

/// Out-of-band interaction services used by scanners and exploit payloads.
static OOB: LazyLock<AhoCorasick> = LazyLock::new(|| {
    literals(&[
        "burpcollaborator.net",
        "oastify.com",
        "oast.me",
        "oast.pro",
        "oast.fun",
        "oast.site",
        "oast.online",
        "oast.live",
        "interact.sh",
        "dnslog.cn",
        "ceye.io",
        "requestrepo.com",
        "canarytokens.com",
        "xss.ht",
        "bxss.me",
    ])
});

/// Header names that only scanners send.
const SCANNER_HEADERS: &[&str] = &[
    "acunetix-product",
    "acunetix-scanning-agreement",
    "acunetix-user-agreement",
    "x-wipp",
    "x-scan-memo",
    "x-request-memo",
    "x-scanner",
    "x-wapiti",
    "x-nuclei",
];

/// Whether a `User-Agent` names an attack tool.
pub fn scanner_agent(ua: &str) -> bool {
    AGENTS.is_match(ua)
}

/// Whether a header name is one only scanners send.
pub fn scanner_header(name: &str) -> bool {
    SCANNER_HEADERS.iter().any(|h| name.eq_ignore_ascii_case(h))
}

/// Whether a value calls back to an out-of-band interaction service.
pub fn oob_callback(value: &str) -> bool {
    OOB.is_match(value)
}

/// Shellshock: a bash function definition `() {` at the start of a value (bash imports it from
/// the environment, running what follows), or anywhere with the `:;}` idiom.
pub fn shellshock(value: &str) -> bool {
    let b = value.as_bytes();
    for p in memchr::memchr_iter(b'(', b) {
        let mut i = p + 1;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if b.get(i) != Some(&b')') {
            continue;
        }
        i += 1;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if b.get(i) == Some(&b'{') {
            let at_start = b[..p]
                .iter()
                .all(|c| c.is_ascii_whitespace() || *c == b'"' || *c == b'\'');
            let body = &b[i + 1..b.len().min(i + 40)];
            let idiom = body
                .iter()
                .filter(|c| !c.is_ascii_whitespace())
                .take(3)
                .copied()
                .collect::<Vec<_>>();
            if at_start || idiom.starts_with(b":;") || idiom.starts_with(b"_;") {
                return true;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_and_shellshock() {
        assert!(scanner_agent("sqlmap/1.7.4#stable (https://sqlmap.org)"));
        assert!(scanner_agent(
            "Mozilla/5.0 [en] (X11, U; OpenVAS-VT 22.4.1)"
        ));
        assert!(scanner_agent("Fuzz Faster U Fool v2.0.0"));
        assert!(!scanner_agent(
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
        ));
        assert!(!scanner_agent("curl/8.5.0"));
        assert!(oob_callback(
            "root@w63gecoroprj5um8ypnd7r6in9t0hseg3.interact.sh"
        ));
        assert!(shellshock(
            "() { :; }; echo; /bin/bash -c 'cat /etc/passwd'"
        ));
        assert!(shellshock("() {ignored;}; /bin/id"));
        assert!(!shellshock("call f() { return 1 } in js"));
        assert!(!shellshock("(a) {b}"));
    }
}
