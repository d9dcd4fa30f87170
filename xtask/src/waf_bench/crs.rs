//! OWASP CRS regression tests as requests: attacks are the tests a 930-934/941/942/944 rule must
//! catch; benign are the tests that only carry `no_expect_ids`, less the reviewed attacks.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use anyhow::Result;
use base64::Engine;
use cnaf::RequestParts;
use yaml_rust2::Yaml;

use super::{load, yaml_files, Case};

/// CRS tests that carry only `no_expect_ids` but send an attack another rule catches (the
/// corpus README asks to review them): reviewed by hand, counted in neither set. Each entry:
/// rule, test id, what the request carries.
pub(super) const CRS_NO_MATCH_ATTACKS: &[(i64, i64, &str)] = &[
    (920640, 2, "select(sleep(10)) in a JSON value"),
    (920640, 4, "select(sleep(10)) in a JSON value"),
    (920640, 5, "select(sleep(10)) in a JSON body"),
    (921120, 3, "CRLF + Location: header injection"),
    (
        920181,
        1,
        "Content-Length with Transfer-Encoding (RFC 9112 §6.3: a request-smuggling sign; no-match only because Apache drops Content-Length before CRS sees it)",
    ),
    (932207, 4, ";ls -al in Referer"),
    (932207, 3, "globbed /bin/ca? /et*/passwd in Referer"),
    (932230, 1, "system('...;wget ...;curl ...')"),
    (932230, 2, ";lwp-download ...;wget ..."),
    (932230, 9, "system('dig ...;ftp ...')"),
    (932230, 10, "system('...;wget ...')"),
    (932230, 11, "system('...;wget ...')"),
    (932230, 12, "system('...;wget ...')"),
    (932230, 14, "SSI exec /bin/cat /etc/shadow"),
    (932230, 15, "newline + cat /etc/passwd"),
    (932230, 16, "Shellshock + curl"),
    (932230, 18, "SSI exec /bin/cat /etc/shadow"),
    (932230, 19, "SSI exec /bin/cat /etc/shadow"),
    (932230, 20, "newline + cat /etc/passwd"),
    (932230, 21, "newline + cat /etc/passwd"),
    (932230, 23, "Shellshock + ftp"),
    (932230, 26, "backtick /bin/cat /etc/passwd"),
    (932230, 27, "backtick command substitution"),
    (932230, 39, ";vi +silent !whoami (editor shell escape)"),
    (932230, 40, ";vim +silent !whoami (editor shell escape)"),
    (932230, 42, ";vi -c:!pwd (editor shell escape)"),
    (932230, 43, ";vim -c:!pwd (editor shell escape)"),
    (932230, 46, ";cat /path/file.gz"),
    (932236, 6, ";vi +silent !whoami (editor shell escape)"),
    (932236, 9, ";vi -c:!pwd (editor shell escape)"),
    (932250, 1, "tar -xzf exfiltration"),
    (932250, 2, ";tar -xzf exfiltration"),
    (932250, 19, "C:\\Windows\\System32 path"),
    (932260, 1, "bash -c"),
    (932260, 2, "exec 5<>/dev/tcp reverse shell in a cookie"),
    (932260, 3, ";tar -xzf exfiltration"),
    (932260, 14, "time curl"),
    (932260, 15, "ti''me curl"),
    (932260, 19, "ping 127.0.0.1"),
    (932340, 17, "C:\\Windows\\System32 path"),
    (933100, 24, "<?php in a cookie"),
    (933100, 25, "<?php as a parameter name"),
    (933100, 81, "system('id') in a PHP-like tag"),
    (933131, 1, "$_SERVER['test']"),
    (
        933131,
        2,
        "$_COOKIE as a parameter name (933130 catches it)",
    ),
    (
        934110,
        6,
        "SSRF to the cloud metadata address, no scheme",
    ),
    (934110, 7, "SSRF to the cloud metadata address"),
    (934110, 8, "SSRF to the cloud metadata host"),
    (
        934120,
        52,
        "SSRF to link-local 169.254.0.169 (`0xA9.0xFE.0xA9`, inet_aton notation)",
    ),
    (934170, 2, "data:// stream wrapper"),
    (941100, 5, "<script> in Referer"),
    (941110, 10, "<script>alert(1) with mangled brackets"),
    (941140, 14, "url(javascript:alert(1))"),
    (941310, 8, "mis-encoded <script>alert()"),
    (941310, 9, "mis-encoded <script>alert()"),
    (942101, 10, "9'union all in the path"),
    (
        942160,
        12,
        "BENCHMARK(2999,MD5( time-delay payload in the path",
    ),
    (942101, 11, "union all select in the path"),
    (942350, 9, "';INSERT INTO ... --"),
    (942360, 29, "||(SELECT(DBMS_LDAP.INIT(...)))"),
    (942360, 30, "'||(select(pg_sleep(15)))||'"),
    (942360, 31, "UNION ALL SELECT NULL,..."),
    (942520, 17, "x'~email--"),
    (942521, 15, "\\'lol' or '1"),
    (942522, 5, "'or'1"),
    (953120, 2, "<?php in a request body"),
    (953120, 6, "<?= in a request body"),
    (959100, 2, "<?php in a request body"),
    (942190, 43, "GET with a body (CRS 920170 flags it at paranoia level 1)"),
    (942190, 45, "GET with a body (CRS 920170 flags it at paranoia level 1)"),
    (942190, 46, "GET with a body (CRS 920170 flags it at paranoia level 1)"),
];

fn crs_class(rule: i64) -> Option<&'static str> {
    Some(match rule / 1000 {
        930 => "LFI",
        931 => "RFI",
        932 => "RCE",
        933 => "PHP injection",
        934 => "Generic injection",
        941 => "XSS",
        942 => "SQL Injection",
        944 => "Java injection",
        _ => return None,
    })
}

fn ids(y: &Yaml) -> Vec<i64> {
    y.as_vec()
        .map(|v| v.iter().filter_map(Yaml::as_i64).collect())
        .unwrap_or_default()
}

/// The CRS tests as cases, and the requests left out because a no-match test and another
/// rule's must-match test send them alike ([`request_key`]): the corpus labels them both ways.
pub(super) fn crs(dir: &Path) -> Result<(Vec<Case>, Vec<String>)> {
    let mut files = Vec::new();
    yaml_files(dir, &["yaml", "yml"], &mut files)?;
    let mut cases = Vec::new();
    for f in files {
        for doc in load(&f)? {
            let rule = doc["rule_id"].as_i64().unwrap_or(0);
            for test in doc["tests"].as_vec().into_iter().flatten() {
                for stage in test["stages"].as_vec().into_iter().flatten() {
                    let input = &stage["input"];
                    let log = &stage["output"]["log"];
                    let expect = ids(&log["expect_ids"]);
                    let no_expect = ids(&log["no_expect_ids"]);
                    let (attack, class) = if let Some(c) = expect.iter().find_map(|r| crs_class(*r))
                    {
                        (true, c.to_string())
                    } else if expect.is_empty() && !no_expect.is_empty() {
                        let id = test["test_id"].as_i64().unwrap_or(0);
                        if CRS_NO_MATCH_ATTACKS
                            .iter()
                            .any(|(r, t, _)| *r == rule && *t == id)
                        {
                            continue;
                        }
                        (false, format!("CRS {} no-match tests", rule / 1000))
                    } else {
                        continue;
                    };
                    let Some((parts, body)) = crs_request(input) else {
                        continue;
                    };
                    cases.push(Case {
                        source: "crs",
                        class,
                        attack,
                        label: format!(
                            "{} test {}: {} {} {}",
                            rule,
                            test["test_id"].as_i64().unwrap_or(0),
                            parts.method,
                            parts.target,
                            String::from_utf8_lossy(&body[..body.len().min(300)])
                        ),
                        parts,
                        body,
                    });
                }
            }
        }
    }
    // the same request labelled both ways (often a rule's paranoia level: CRS flags `id=4` at
    // level 3 and lets it pass below): neither label holds, the request counts in neither set
    let keys: Vec<RequestKey> = cases.iter().map(request_key).collect();
    let mut caught: HashMap<&RequestKey, &str> = HashMap::new();
    for (c, key) in cases.iter().zip(&keys).filter(|(c, _)| c.attack) {
        caught.entry(key).or_insert(&c.label);
    }
    let mut twins = Vec::new();
    let mut both = HashSet::new();
    for (c, key) in cases.iter().zip(&keys).filter(|(c, _)| !c.attack) {
        if let Some(attack) = caught.get(key) {
            twins.push(format!("{} = {}", short(&c.label), short(attack)));
            both.insert(key);
        }
    }
    let keep: Vec<bool> = keys.iter().map(|k| !both.contains(k)).collect();
    let mut keep = keep.into_iter();
    cases.retain(|_| keep.next().unwrap_or(true));
    Ok((cases, twins))
}

/// What makes two CRS tests the same request: method, version, target, body and every header
/// but the test agent's own (`Host`, `Accept*`, `Connection`, and the length go-ftw computes).
fn request_key(c: &Case) -> RequestKey {
    let mut headers: Vec<(String, String)> = c
        .parts
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
        .filter(|(k, _)| {
            !(k.starts_with("accept")
                || matches!(k.as_str(), "host" | "connection" | "content-length"))
        })
        .collect();
    headers.sort();
    (
        format!(
            "{} {} {}",
            c.parts.method.to_ascii_uppercase(),
            c.parts.target,
            c.parts.version
        ),
        headers,
        c.body.clone(),
    )
}

/// A label cut to its test id and the start of the request.
fn short(label: &str) -> String {
    label
        .chars()
        .take(90)
        .collect::<String>()
        .replace(['\r', '\n'], " ")
}

type RequestKey = (String, Vec<(String, String)>, Vec<u8>);

fn crs_request(input: &Yaml) -> Option<(RequestParts, Vec<u8>)> {
    if let Some(enc) = input["encoded_request"].as_str() {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(enc.trim())
            .ok()?;
        return parse_raw(&raw);
    }
    let method = input["method"].as_str().unwrap_or("GET");
    let uri = input["uri"].as_str().unwrap_or("/");
    let version = input["version"].as_str().unwrap_or("HTTP/1.1");
    let mut parts = RequestParts::new(method, uri);
    parts.version = version.to_string();
    if let Some(h) = input["headers"].as_hash() {
        for (k, v) in h {
            let val = match v {
                Yaml::String(s) => s.clone(),
                Yaml::Integer(i) => i.to_string(),
                Yaml::Real(r) => r.clone(),
                _ => continue,
            };
            if let Some(k) = k.as_str() {
                parts = parts.header(k, &val);
            }
        }
    }
    let body = match &input["data"] {
        Yaml::String(s) => s.clone().into_bytes(),
        Yaml::Array(lines) => lines
            .iter()
            .filter_map(Yaml::as_str)
            .collect::<Vec<_>>()
            .join("\r\n")
            .into_bytes(),
        _ => Vec::new(),
    };
    let mut body = body;
    if parts.first_header("transfer-encoding").is_none() {
        if let Some(cl) = parts
            .first_header("content-length")
            .and_then(|v| v.trim().parse::<usize>().ok())
        {
            // HTTP/1.1 framing (RFC 9112 §6.3): the body is `Content-Length` bytes; what follows
            // is the next request on the connection, not this one's body
            body.truncate(cl);
        }
    }
    let has_ct = parts.first_header("content-type").is_some();
    let has_cl = parts.first_header("content-length").is_some();
    if !body.is_empty() && !has_cl && parts.first_header("transfer-encoding").is_none() {
        // go-ftw fills in the length of `data`
        parts = parts.header("Content-Length", &body.len().to_string());
    }
    if !body.is_empty() && !has_ct && method.eq_ignore_ascii_case("POST") {
        parts = parts.header("Content-Type", "application/x-www-form-urlencoded");
    }
    Some((parts, body))
}

fn parse_raw(raw: &[u8]) -> Option<(RequestParts, Vec<u8>)> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(n) = req.parse(raw).ok()? else {
        return None;
    };
    let mut parts = RequestParts::new(req.method?, req.path?);
    parts.version = format!("HTTP/1.{}", req.version.unwrap_or(1));
    for h in req.headers.iter() {
        parts = parts.header(h.name, &String::from_utf8_lossy(h.value));
    }
    Some((parts, raw[n..].to_vec()))
}
