//! Time `cnaf::inspect` on typical requests (browser GET with query and cookies, a 1 KiB JSON
//! API call, the same call with every value distinct, a form post, a 16 KiB JSON document, the
//! same gzip-compressed, and a gzip bomb decoding to 32 MiB):
//! `inspect_latency [ITERATIONS] [NAME FILTER]` (fewer iterations for kinds that take long).
//! Prints p50/p99/max per request kind in microseconds, twice: wall-clock time, and the
//! thread's CPU time (which time spent waiting for the CPU while other processes run does not
//! inflate: the inspection's own cost). Build with `--release`.

use std::time::{Duration, Instant};

use rustix::time::{clock_gettime, ClockId};

use cnaf::{inspect, policy, CnafEffect, RequestParts};

fn browser(method: &str, target: &str) -> RequestParts {
    RequestParts::new(method, target)
        .header("Host", "shop.example.com")
        .header(
            "User-Agent",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
        )
        .header("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
        .header("Accept-Language", "en-GB,en;q=0.9")
        .header("Accept-Encoding", "gzip, deflate, br")
        .header("Referer", "https://shop.example.com/catalogue?category=shoes&page=1")
        .header(
            "Cookie",
            "session=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJl; theme=dark; consent=yes",
        )
}

fn json_doc(items: usize) -> String {
    let rows: Vec<String> = (0..items)
        .map(|i| {
            format!(
                r#"{{"sku":"SKU-{i:05}","name":"Running shoe model {i}","qty":{},"note":"Deliver to the back door, it's the one with the blue frame"}}"#,
                i % 7 + 1
            )
        })
        .collect();
    format!(
        r#"{{"customer":"o'reilly@example.com","items":[{}]}}"#,
        rows.join(",")
    )
}

/// The JSON API call of `json_doc(6)` with no two values or keys alike (a worst case for any
/// reuse of work between repeated values).
fn json_distinct(items: usize) -> String {
    let rows: Vec<String> = (0..items)
        .map(|i| {
            format!(
                r#"{{"sku{i}":"SKU-{i:05}","name{i}":"Running shoe model {i}","qty{i}":{},"note{i}":"Deliver to the back door {i}, it's the one with the blue frame"}}"#,
                i % 7 + 1
            )
        })
        .collect();
    format!(
        r#"{{"customer":"o'reilly@example.com","items":[{}]}}"#,
        rows.join(",")
    )
}

fn thread_cpu() -> Duration {
    let t = clock_gettime(ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let filter = std::env::args().nth(2).unwrap_or_default();
    let protections = policy::all(CnafEffect::Prevent);
    let small_json = json_doc(6);
    let big_json = json_doc(100);
    let form = "first_name=Mary&last_name=O%27Brien&email=mary%40example.com&address=12+Main+St%2C+Apt+4&city=Springfield&zip=12345&comment=Please+leave+it+at+the+door%21";
    let gzip = |data: &[u8]| {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data)
            .and_then(|()| e.finish())
            .unwrap_or_default()
    };
    let big_json_gz = gzip(big_json.as_bytes());
    // 32 MiB of JSON whitespace around one value: decoded only up to the default body_limit
    let mut bomb_text = vec![b' '; 32 << 20];
    bomb_text[0] = b'[';
    bomb_text[1] = b'1';
    bomb_text[(32 << 20) - 1] = b']';
    let bomb = gzip(&bomb_text);
    drop(bomb_text);
    let cases: Vec<(&str, RequestParts, Vec<u8>)> = vec![
        (
            "GET page with query + cookies",
            browser(
                "GET",
                "/catalogue/shoes?color=red&size=42&sort=price_asc&page=2",
            ),
            Vec::new(),
        ),
        (
            "POST 1 KiB JSON",
            browser("POST", "/api/orders").header("Content-Type", "application/json"),
            small_json.into_bytes(),
        ),
        (
            "POST 1 KiB JSON, distinct values",
            browser("POST", "/api/orders").header("Content-Type", "application/json"),
            json_distinct(6).into_bytes(),
        ),
        (
            "POST form",
            browser("POST", "/checkout")
                .header("Content-Type", "application/x-www-form-urlencoded"),
            form.as_bytes().to_vec(),
        ),
        (
            "POST 16 KiB JSON",
            browser("POST", "/api/orders/bulk").header("Content-Type", "application/json"),
            big_json.into_bytes(),
        ),
        (
            "POST 16 KiB JSON, gzip",
            browser("POST", "/api/orders/bulk")
                .header("Content-Type", "application/json")
                .header("Content-Encoding", "gzip"),
            big_json_gz,
        ),
        (
            "POST gzip bomb (32 MiB of JSON)",
            browser("POST", "/api/orders/bulk")
                .header("Content-Type", "application/json")
                .header("Content-Encoding", "gzip"),
            bomb,
        ),
    ];
    println!(
        "{:<34} {:>6} | {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8}",
        "request", "bytes", "p50 us", "p99 us", "max us", "cpu p50", "cpu p99", "cpu max"
    );
    for (name, parts, body) in cases.iter().filter(|c| c.0.contains(&filter)) {
        let verdict = inspect(parts, body, &protections);
        assert!(
            verdict.findings.is_empty(),
            "{name} must be clean: {verdict:?}"
        );
        // at most about two seconds per request kind (the bomb takes milliseconds each)
        let once = Instant::now();
        std::hint::black_box(inspect(parts, body, &protections));
        let n = n
            .min((2.0 / once.elapsed().as_secs_f64().max(1e-9)) as usize)
            .max(200);
        let mut wall = Vec::with_capacity(n);
        let mut cpu = Vec::with_capacity(n);
        for _ in 0..n {
            let c = thread_cpu();
            let t = Instant::now();
            let v = inspect(parts, body, &protections);
            wall.push(t.elapsed().as_nanos());
            cpu.push((thread_cpu() - c).as_nanos());
            std::hint::black_box(v);
        }
        wall.sort_unstable();
        cpu.sort_unstable();
        let q = |v: &[u128], p: f64| v[((v.len() - 1) as f64 * p) as usize] as f64 / 1000.0;
        println!(
            "{name:<34} {:>6} | {:>8.1} {:>8.1} {:>8.1} | {:>8.1} {:>8.1} {:>8.1}",
            body.len(),
            q(&wall, 0.5),
            q(&wall, 0.99),
            q(&wall, 1.0),
            q(&cpu, 0.5),
            q(&cpu, 0.99),
            q(&cpu, 1.0)
        );
    }
}
