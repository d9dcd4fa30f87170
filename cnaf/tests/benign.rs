//! False positives on legitimate traffic: a corpus of ordinary request values (names, prose,
//! search boxes, addresses, e-mails, dates, URLs, JSON API payloads, GraphQL documents, header
//! lines, passwords, developer posts) under `tests/data/benign/`, each value placed the ways a
//! request carries it (query parameter, form field, JSON string, header, cookie, path segment,
//! whole body) and inspected with every protection on `prevent`.
//!
//! - Asserted: at paranoia levels 1 and 2 (the default), no finding at all on any file but
//!   `developer.txt` (borderline developer content) and `known_fps.txt` (false positives at
//!   those levels waiting for a detector fix, listed in the lead's notes; each line names the
//!   file it came from).
//! - Printed: the share of lines with a finding per file at levels 1 to 4, read with
//!   `cargo test -p cnaf --test benign -- --nocapture` (`BENIGN_SHOW=N` also prints the findings
//!   at level N).

use cnaf::{inspect, policy, CnafEffect, Paranoia, RequestParts, Verdict};

/// How a request carries a value.
#[derive(Clone, Copy)]
enum Place {
    /// `GET /path?name=value`, form-encoded (`+` for spaces).
    Query(&'static str, &'static str),
    /// `POST` form body `name=value`.
    Form(&'static str),
    /// `POST` JSON body `{"name": "value"}`.
    Json(&'static str),
    /// A header of that name.
    Header(&'static str),
    /// A cookie of that name, percent-encoded as apps store text in cookies.
    Cookie(&'static str),
    /// A path segment after that prefix, percent-encoded.
    Path(&'static str),
    /// The value is a URL: its path and query are the request target.
    Target,
    /// The value is a URL sent back as the `Referer` of the next page.
    Referer,
    /// The value is a JSON document: the body of a `POST`.
    JsonBody,
    /// The value is a GraphQL document: `POST /graphql` with `{"query": value}`.
    GraphqlPost,
    /// The value is a whole header line `Name: value`, sent on a `GET` with only `Host` besides.
    HeaderLine,
    /// A text field of a `multipart/form-data` body (a form with a file input).
    MultipartField(&'static str),
    /// The file name of an uploaded file (`"` escaped as `%22`, as browsers send it).
    MultipartFile,
}

impl Place {
    fn name(self) -> String {
        match self {
            Place::Query(_, n) => format!("query {n}"),
            Place::Form(n) => format!("form {n}"),
            Place::Json(n) => format!("json {n}"),
            Place::Header(n) => format!("header {n}"),
            Place::Cookie(n) => format!("cookie {n}"),
            Place::Path(p) => format!("path {p}"),
            Place::Target => "request target".into(),
            Place::Referer => "referer".into(),
            Place::JsonBody => "json body".into(),
            Place::GraphqlPost => "graphql post".into(),
            Place::HeaderLine => "header line".into(),
            Place::MultipartField(n) => format!("multipart field {n}"),
            Place::MultipartFile => "multipart filename".into(),
        }
    }

    /// The request head and body carrying `v`.
    fn request(self, v: &str) -> (RequestParts, String) {
        let get = |target: &str| browser(RequestParts::new("GET", target));
        let post = |target: &str, ct: &str| {
            browser(RequestParts::new("POST", target)).header("Content-Type", ct)
        };
        match self {
            Place::Query(path, n) => (
                get(&format!("{path}?{n}={}&page=1", form(v))),
                String::new(),
            ),
            Place::Form(n) => (
                post("/submit", "application/x-www-form-urlencoded"),
                format!("csrf=4f9a2c&{n}={}", form(v)),
            ),
            Place::Json(n) => (
                post("/api/v1/items", "application/json"),
                serde_json::json!({ "position": 42, n: v, "draft": false }).to_string(),
            ),
            Place::Header(n) => (get("/account").header(n, v), String::new()),
            Place::Cookie(n) => (
                get("/home").header("Cookie", &format!("sid=8d2f0c7e1b; {n}={}", pct(v))),
                String::new(),
            ),
            Place::Path(p) => (get(&format!("{p}/{}", pct(v))), String::new()),
            Place::Target => (get(&target(v)), String::new()),
            Place::Referer => (get("/cart").header("Referer", &absolute(v)), String::new()),
            Place::JsonBody => (post("/api/v2/orders", "application/json"), v.to_string()),
            Place::GraphqlPost => (
                post("/graphql", "application/json"),
                serde_json::json!({ "query": v, "variables": {} }).to_string(),
            ),
            Place::HeaderLine => {
                let (name, value) = v.split_once(':').unwrap_or((v, ""));
                let parts = RequestParts::new("GET", "/account").header("Host", "shop.example.com");
                (parts.header(name.trim(), value.trim()), String::new())
            }
            Place::MultipartField(n) => (
                post("/upload", MULTIPART),
                format!(
                    "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{n}\"\r\n\r\n{v}\r\n--{BOUNDARY}--\r\n"
                ),
            ),
            Place::MultipartFile => (
                post("/upload", MULTIPART),
                format!(
                    "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"attachment\"; filename=\"{}\"\r\nContent-Type: application/octet-stream\r\n\r\nhello\r\n--{BOUNDARY}--\r\n",
                    v.replace('"', "%22")
                ),
            ),
        }
    }
}

/// The multipart boundary browsers send (Chrome's shape).
const BOUNDARY: &str = "----WebKitFormBoundary7MA4YWxkTrZu0gW";
const MULTIPART: &str = "multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW";

/// The headers every browser request has.
fn browser(parts: RequestParts) -> RequestParts {
    parts
        .header("Host", "shop.example.com")
        .header(
            "User-Agent",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
        )
        .header("Accept-Language", "en-GB,en;q=0.9")
}

/// Percent-encoding of everything but unreserved characters (path segments, cookies).
fn pct(v: &str) -> String {
    let mut out = String::with_capacity(v.len() * 3);
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `application/x-www-form-urlencoded` as browsers send it (space as `+`).
fn form(v: &str) -> String {
    pct(v).replace("%20", "+")
}

/// The path and query of a URL (absolute or already a path).
fn target(url: &str) -> String {
    match url.split_once("://") {
        Some((_, rest)) => rest
            .find('/')
            .map_or("/".to_string(), |i| rest[i..].to_string()),
        None => url.to_string(),
    }
}

/// The URL made absolute on this site.
fn absolute(url: &str) -> String {
    if url.contains("://") {
        url.to_string()
    } else {
        format!("https://shop.example.com{url}")
    }
}

/// One corpus file and the ways its values travel.
struct Corpus {
    file: &'static str,
    text: &'static str,
    places: &'static [Place],
    /// Level 1 must find nothing.
    asserted: bool,
}

const PERSON: &[Place] = &[
    Place::Query("/search", "name"),
    Place::Form("full_name"),
    Place::Json("name"),
    Place::Header("X-Display-Name"),
    Place::Cookie("display_name"),
    Place::Path("/users"),
];
const TEXT: &[Place] = &[
    Place::Query("/reviews", "comment"),
    Place::Form("message"),
    Place::Json("body"),
    Place::MultipartField("description"),
];
const POST: &[Place] = &[Place::Form("body"), Place::Json("content")];
const SEARCH: &[Place] = &[
    Place::Query("/search", "q"),
    Place::Form("q"),
    Place::Json("query"),
    Place::Cookie("last_search"),
    Place::Path("/search"),
];
const ADDRESS: &[Place] = &[
    Place::Query("/stores", "address"),
    Place::Form("street"),
    Place::Json("shipping_address"),
];
const FIELD: &[Place] = &[
    Place::Query("/lookup", "value"),
    Place::Form("value"),
    Place::Json("value"),
    Place::Header("X-Request-Info"),
    Place::Cookie("pref"),
    Place::Path("/records"),
];
const URL: &[Place] = &[
    Place::Target,
    Place::Referer,
    Place::Query("/login", "next"),
];
const JSON: &[Place] = &[Place::JsonBody, Place::Query("/api/v1/items", "filter")];
const GRAPHQL: &[Place] = &[Place::GraphqlPost, Place::Query("/graphql", "query")];
const HEADER: &[Place] = &[Place::HeaderLine];
const TEXTAREA: &[Place] = &[
    Place::Form("message"),
    Place::Json("message"),
    Place::MultipartField("message"),
];
const RICH: &[Place] = &[Place::Form("content_html"), Place::Json("html")];
const FILENAME: &[Place] = &[
    Place::MultipartFile,
    Place::Query("/download", "file"),
    Place::Json("filename"),
    Place::Header("X-File-Name"),
];
const PASSWORD: &[Place] = &[Place::Form("password"), Place::Json("password")];

macro_rules! corpus {
    ($file:literal, $places:expr, $asserted:expr) => {
        Corpus {
            file: $file,
            text: include_str!(concat!("data/benign/", $file)),
            places: $places,
            asserted: $asserted,
        }
    };
}

fn corpora() -> Vec<Corpus> {
    vec![
        corpus!("names.txt", PERSON, true),
        corpus!("prose.txt", TEXT, true),
        corpus!("search.txt", SEARCH, true),
        corpus!("addresses.txt", ADDRESS, true),
        corpus!("emails.txt", FIELD, true),
        corpus!("dates_numbers.txt", FIELD, true),
        corpus!("urls.txt", URL, true),
        corpus!("json.txt", JSON, true),
        corpus!("graphql.txt", GRAPHQL, true),
        corpus!("headers.txt", HEADER, true),
        corpus!("passwords.txt", PASSWORD, true),
        corpus!("filenames.txt", FILENAME, true),
        corpus!("richtext.txt", RICH, true),
        corpus!("multiline.txt", TEXTAREA, true),
        corpus!("tech.txt", POST, true),
        corpus!("developer.txt", POST, false),
    ]
}

/// The places of the file a `known_fps.txt` line came from.
fn places_of(file: &str) -> Option<&'static [Place]> {
    corpora()
        .into_iter()
        .find(|c| c.file == file)
        .map(|c| c.places)
}

/// The values of a corpus text: one per non-empty line.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter(|l| !l.trim().is_empty())
}

/// A value as the request carries it: in `multiline.txt` a literal `\n` is a textarea line
/// break, sent as CRLF like browsers do.
fn unfold(file: &str, line: &'static str) -> std::borrow::Cow<'static, str> {
    if file == "multiline.txt" {
        std::borrow::Cow::Owned(line.replace("\\n", "\r\n"))
    } else {
        std::borrow::Cow::Borrowed(line)
    }
}

/// One finding on a benign value.
struct Hit {
    value: String,
    place: String,
    verdict: Verdict,
}

/// Lines, lines with a finding, and the findings.
type Measured = (usize, usize, Vec<Hit>);

/// Lines with a finding out of all lines, and the findings, for one set of values at one level.
fn measure<'a>(
    values: impl Iterator<Item = (&'a str, &'static [Place])>,
    level: Paranoia,
) -> Measured {
    let protections = policy::all(CnafEffect::Prevent).at(level);
    let (mut total, mut flagged, mut hits) = (0, 0, Vec::new());
    for (value, places) in values {
        total += 1;
        let mut any = false;
        for place in places {
            let (parts, body) = place.request(value);
            let verdict = inspect(&parts, body.as_bytes(), &protections);
            if !verdict.findings.is_empty() {
                any = true;
                hits.push(Hit {
                    value: value.to_string(),
                    place: place.name(),
                    verdict,
                });
            }
        }
        flagged += usize::from(any);
    }
    (total, flagged, hits)
}

fn describe(hit: &Hit) -> String {
    let found: Vec<String> = hit
        .verdict
        .findings
        .iter()
        .map(|f| format!("{} at {}: {:?}", f.attack, f.location, f.snippet))
        .collect();
    format!("{:?} as {}: {}", hit.value, hit.place, found.join("; "))
}

/// The values of a file at one level (known FPs placed as their home file places them).
fn values(c: &Corpus) -> Vec<(std::borrow::Cow<'static, str>, &'static [Place])> {
    if c.file != "known_fps.txt" {
        return lines(c.text)
            .map(|l| (unfold(c.file, l), c.places))
            .collect();
    }
    lines(c.text)
        .map(|l| {
            let (home, value) = l.split_once('\t').unwrap_or(("prose.txt", l));
            (unfold(home, value), places_of(home).unwrap_or(TEXT))
        })
        .collect()
}

#[test]
fn benign_corpus_passes_the_default_level_and_rates_are_printed() {
    let mut all = corpora();
    all.push(corpus!("known_fps.txt", TEXT, false));
    let show: Option<u8> = std::env::var("BENIGN_SHOW")
        .ok()
        .and_then(|s| s.parse().ok());
    let mut failures = Vec::new();
    // over the asserted (legitimate) files: lines, lines flagged, and findings per detector
    let mut sums = [(0usize, 0usize); 4];
    let mut by_attack: [std::collections::BTreeMap<&str, usize>; 4] = Default::default();
    println!("benign corpus: lines with any finding, per paranoia level");
    println!(
        "{:<20}{:>6}{:>14}{:>14}{:>14}{:>14}",
        "file", "lines", "level 1", "level 2", "level 3", "level 4"
    );
    for c in &all {
        let vals = values(c);
        let mut row = format!("{:<20}{:>6}", c.file, vals.len());
        // the four levels in parallel: the test stays fast in debug builds
        let results: Vec<(Paranoia, Measured)> = std::thread::scope(|scope| {
            let handles: Vec<_> = Paranoia::all()
                .map(|level| {
                    let vals = &vals;
                    let run = move || measure(vals.iter().map(|(v, p)| (v.as_ref(), *p)), level);
                    (level, scope.spawn(run))
                })
                .collect();
            handles
                .into_iter()
                .map(|(level, h)| {
                    let r = h.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
                    (level, r)
                })
                .collect()
        });
        for (level, (total, flagged, hits)) in results {
            let i = usize::from(u8::from(level)) - 1;
            if c.asserted {
                sums[i].0 += total;
                sums[i].1 += flagged;
                for f in hits.iter().flat_map(|h| &h.verdict.findings) {
                    *by_attack[i].entry(f.attack.key()).or_default() += 1;
                }
            }
            let pct = if total == 0 {
                0.0
            } else {
                100.0 * flagged as f64 / total as f64
            };
            row.push_str(&format!("{:>14}", format!("{flagged} {pct:.1}%")));
            if show == Some(u8::from(level)) {
                for h in &hits {
                    println!("  L{level} {}: {}", c.file, describe(h));
                }
            }
            if level == Paranoia::MIN && c.file == "known_fps.txt" {
                for (value, _) in &vals {
                    if !hits.iter().any(|h| h.value == value.as_ref()) {
                        println!(
                            "  known_fps.txt: {value:?} passes level {level} now: move it home"
                        );
                    }
                }
            }
            if level <= Paranoia::DEFAULT && c.asserted {
                failures.extend(hits.iter().map(|h| format!("{}: {}", c.file, describe(h))));
            }
        }
        println!("{row}");
    }
    let mut row = format!("{:<20}{:>6}", "all", sums[0].0);
    for (total, flagged) in sums {
        let pct = 100.0 * flagged as f64 / total.max(1) as f64;
        row.push_str(&format!("{:>14}", format!("{flagged} {pct:.1}%")));
    }
    println!("{row}");
    println!("(all = every file but developer.txt and known_fps.txt)");
    for (i, counts) in by_attack.iter().enumerate() {
        let list: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
        println!(
            "level {} findings on legitimate values (value x placement): {}",
            i + 1,
            list.join(", ")
        );
    }
    assert!(
        failures.is_empty(),
        "{} false positives at levels 1-2 on legitimate values:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn corpus_files_are_large_and_free_of_duplicates() {
    let mut total = 0;
    for c in corpora() {
        let vals: Vec<&str> = lines(c.text).collect();
        assert!(vals.len() >= 30, "{} has only {} lines", c.file, vals.len());
        let mut seen = std::collections::HashSet::new();
        for v in &vals {
            assert!(seen.insert(*v), "{}: duplicate line {v:?}", c.file);
        }
        total += vals.len();
    }
    assert!(total >= 600, "corpus has {total} lines");
    for l in lines(include_str!("data/benign/known_fps.txt")) {
        let home = l.split_once('\t').map(|(h, _)| h);
        assert!(
            home.and_then(places_of).is_some(),
            "known_fps.txt line must start with its home file and a tab: {l:?}"
        );
    }
}

/// The harness itself: every placement really reaches the inspector (an attack placed the same
/// way is found at level 1), so a clean benign run is not a request nobody inspected.
#[test]
fn every_placement_is_inspected() {
    let probe = "<script>alert(1)</script>";
    let cases: Vec<(Place, String)> = [
        PERSON, TEXT, POST, SEARCH, ADDRESS, FIELD, PASSWORD, FILENAME, RICH, TEXTAREA,
    ]
    .iter()
    .flat_map(|places| places.iter().map(|p| (*p, probe.to_string())))
    .chain([
        (Place::Target, format!("/search?q={}", pct(probe))),
        (Place::Referer, format!("/search?q={}", pct(probe))),
        (Place::JsonBody, format!("{{\"q\":{probe:?}}}")),
        (
            Place::GraphqlPost,
            "query { __schema { types { name } } }".to_string(),
        ),
        (Place::HeaderLine, format!("X-Note: {probe}")),
        (Place::MultipartFile, "shell.php".to_string()),
    ])
    .collect();
    let protections = policy::all(CnafEffect::Prevent);
    for (place, value) in cases {
        let (parts, body) = place.request(&value);
        let v = inspect(&parts, body.as_bytes(), &protections);
        assert!(
            !v.findings.is_empty(),
            "{value:?} as {} was not inspected",
            place.name()
        );
    }
}
