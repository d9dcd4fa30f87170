//! `cargo xtask waf-bench [--corpus DIR] [--show N] [--class NAME] [--paranoia 1-4]`: replay the
//! public labelled WAF corpora (OWASP CRS regression tests, gotestwaf) through `cnaf::inspect`
//! with every protection on `prevent`, and print the true-positive rate on attacks and the
//! true-negative rate on benign requests, per class, plus the inspection time, at one paranoia
//! level (default 1); then the overall rates at every level.
//!
//! How the corpora become requests follows `shared/benchmarks/waf/README.md`:
//! - gotestwaf: every payload, through each of its encoders (Plain, URL, Base64Flat), into each
//!   of its placeholders (URL parameter, path, header, User-Agent, JSON, form, multipart, XML,
//!   SOAP, GraphQL, gRPC, raw request); `false-pos/` payloads are the benign set.
//! - CRS: a test is an attack when its `expect_ids` names a rule of 930-934, 941, 942 or 944; a
//!   test carrying only `no_expect_ids` is benign.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

mod crs;
mod gotestwaf;

use anyhow::{bail, Context, Result};
use cnaf::{inspect_whole, policy, Action, CnafEffect, Paranoia, Protections, RequestParts};
use yaml_rust2::{Yaml, YamlLoader};

/// One labelled request.
struct Case {
    source: &'static str,
    class: String,
    attack: bool,
    parts: RequestParts,
    body: Vec<u8>,
    label: String,
}

/// gotestwaf classes no CNAF protection claims (reported, not part of the in-scope score):
/// none today. (Mail injection is caught by `malformed`, as CR/LF injection of protocol
/// commands; gRPC carries SQLi/XSS payloads; `LDAP Injection` is `ldap`, `GraphQL`
/// introspection is `graphql`.)
const OUT_OF_SCOPE: &[&str] = &[];

pub fn run(args: &[String]) -> Result<()> {
    let mut corpus: Option<PathBuf> = None;
    let mut show = 0usize;
    let mut only: Option<String> = None;
    let mut paranoia = Paranoia::DEFAULT;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--corpus" => corpus = Some(it.next().context("--corpus needs a directory")?.into()),
            "--show" => {
                show = it
                    .next()
                    .context("--show needs a number")?
                    .parse()
                    .context("--show: expected a number of examples, e.g. --show 20")?
            }
            "--class" => only = Some(it.next().context("--class needs a class name")?.clone()),
            "--paranoia" => {
                let n = it.next().context("--paranoia needs a level, 1 to 4")?;
                paranoia = n
                    .parse()
                    .ok()
                    .and_then(Paranoia::new)
                    .with_context(|| format!("--paranoia: {n:?} is not a level; use 1 to 4"))?
            }
            other => bail!("waf-bench: unknown argument {other:?}; usage: cargo xtask waf-bench [--corpus DIR] [--show N] [--class NAME] [--paranoia 1-4]"),
        }
    }
    let root = corpus.unwrap_or_else(default_corpus);
    if !root.join("gotestwaf").is_dir() || !root.join("crs-regression").is_dir() {
        bail!(
            "waf-bench: {} does not hold gotestwaf/ and crs-regression/; pass --corpus DIR (the folder of shared/benchmarks/waf)",
            root.display()
        );
    }
    let mut cases = gotestwaf::gotestwaf(&root.join("gotestwaf/testcases"))?;
    let (crs_cases, twins) = crs::crs(&root.join("crs-regression/tests/regression/tests"))?;
    cases.extend(crs_cases);
    println!(
        "{} CRS no-match tests send the request of another rule's must-match test: labelled both ways, counted in neither set",
        twins.len()
    );
    for t in twins.iter().take(show) {
        println!("  labelled both ways: {t}");
    }
    if let Some(c) = &only {
        cases.retain(|k| k.class.eq_ignore_ascii_case(c));
    }
    let protections = policy::all(CnafEffect::Prevent).at(paranoia);
    println!("paranoia level {paranoia}, every protection on prevent");
    report(&cases, show, &protections);
    println!();
    println!("every paranoia level (TP on protected classes, TN, mean):");
    for level in Paranoia::all() {
        let protections = protections.at(level);
        let (mut tp, mut tpn, mut tn, mut tnn) = (0, 0, 0, 0);
        for c in cases
            .iter()
            .filter(|c| !OUT_OF_SCOPE.contains(&c.class.as_str()))
        {
            let v = inspect_whole(&c.parts, &c.body, &protections, policy::DEFAULT_BODY_LIMIT);
            let detected = v.action() != Action::Allow;
            if c.attack {
                tpn += 1;
                tp += usize::from(detected);
            } else {
                tnn += 1;
                tn += usize::from(!detected);
            }
        }
        let (tpr, tnr) = (pct(tp, tpn), pct(tn, tnn));
        println!(
            "  paranoia {level}: TP {tp}/{tpn} = {tpr:.2}%, TN {tn}/{tnn} = {tnr:.2}%, mean {:.2}%",
            (tpr + tnr) / 2.0
        );
    }
    Ok(())
}

/// `shared/benchmarks/waf` next to the checkout or next to any folder above it (a checkout in
/// a nested worktree still finds it).
fn default_corpus() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .map(|dir| dir.join("shared/benchmarks/waf"))
        .find(|dir| dir.is_dir())
        .unwrap_or_else(|| manifest.join("../../shared/benchmarks/waf"))
}

#[derive(Default)]
struct Tally {
    n: usize,
    hit: usize,
}

fn report(cases: &[Case], show: usize, protections: &Protections) {
    let mut per: BTreeMap<(bool, &str, &str), Tally> = BTreeMap::new();
    let mut misses: Vec<&Case> = Vec::new();
    let mut fps: Vec<(&Case, String)> = Vec::new();
    let mut times: Vec<u128> = Vec::with_capacity(cases.len());
    let mut benign_times: Vec<u128> = Vec::new();
    for c in cases {
        let t0 = Instant::now();
        let v = inspect_whole(&c.parts, &c.body, protections, policy::DEFAULT_BODY_LIMIT);
        let dt = t0.elapsed().as_nanos();
        times.push(dt);
        if !c.attack && c.body.len() < 16 * 1024 {
            benign_times.push(dt);
        }
        let detected = v.action() != Action::Allow;
        let t = per
            .entry((c.attack, c.source, c.class.as_str()))
            .or_default();
        t.n += 1;
        let correct = detected == c.attack;
        if correct {
            t.hit += 1;
        } else if c.attack {
            misses.push(c);
        } else {
            let why = v
                .primary()
                .map(|f| format!("{} in {}: {}", f.attack, f.location, f.snippet))
                .unwrap_or_default();
            fps.push((c, why));
        }
    }
    let (mut tp, mut tpn, mut tn, mut tnn, mut in_tp, mut in_n) = (0, 0, 0, 0, 0, 0);
    // per source: attacks right, attacks, benign right, benign, in-scope attacks right, in-scope
    let mut by_source: BTreeMap<&str, [usize; 6]> = BTreeMap::new();
    println!(
        "{:<8} {:<10} {:<32} {:>6} {:>6} {:>7}",
        "set", "source", "class", "cases", "right", "rate"
    );
    for ((attack, source, class), t) in &per {
        let set = if *attack { "attack" } else { "benign" };
        let scope = if *attack && OUT_OF_SCOPE.contains(class) {
            " (no CNAF protection)"
        } else {
            ""
        };
        println!(
            "{set:<8} {source:<10} {class:<32} {:>6} {:>6} {:>6.1}%{scope}",
            t.n,
            t.hit,
            pct(t.hit, t.n)
        );
        let src = by_source.entry(source).or_default();
        if *attack {
            src[0] += t.hit;
            src[1] += t.n;
            if scope.is_empty() {
                src[4] += t.hit;
                src[5] += t.n;
            }
        } else {
            src[2] += t.hit;
            src[3] += t.n;
        }
        if *attack {
            tp += t.hit;
            tpn += t.n;
            if scope.is_empty() {
                in_tp += t.hit;
                in_n += t.n;
            }
        } else {
            tn += t.hit;
            tnn += t.n;
        }
    }
    let tpr = pct(tp, tpn);
    let tnr = pct(tn, tnn);
    println!();
    println!("true positives (attacks blocked):   {tp}/{tpn} = {tpr:.2}%");
    println!(
        "  of classes CNAF protects against: {in_tp}/{in_n} = {:.2}%",
        pct(in_tp, in_n)
    );
    println!("true negatives (benign forwarded):  {tn}/{tnn} = {tnr:.2}%");
    for (source, [a, an, b, bn, ia, ian]) in &by_source {
        println!(
            "  {source:<10} TP {a}/{an} = {:.2}% (protected classes {ia}/{ian} = {:.2}%), TN {b}/{bn} = {:.2}%",
            pct(*a, *an),
            pct(*ia, *ian),
            pct(*b, *bn)
        );
    }
    println!(
        "score (mean of the two):            {:.2}%",
        (tpr + tnr) / 2.0
    );
    println!(
        "({} CRS no-match tests that carry an attack, reviewed by hand, are in neither set)",
        crs::CRS_NO_MATCH_ATTACKS.len()
    );
    times.sort_unstable();
    benign_times.sort_unstable();
    println!(
        "inspection time, all cases: p50 {:.1} us, p99 {:.1} us, max {:.1} us; benign requests under 16 KiB: p50 {:.1} us, p99 {:.1} us",
        quantile(&times, 0.5),
        quantile(&times, 0.99),
        quantile(&times, 1.0),
        quantile(&benign_times, 0.5),
        quantile(&benign_times, 0.99)
    );
    if cfg!(debug_assertions) {
        println!("(debug build: `cargo run --release -p xtask -- waf-bench` gives representative timings)");
    }
    for c in misses.iter().take(show) {
        println!("MISS [{}] {}", c.class, short(&c.label));
    }
    for (c, why) in fps.iter().take(show) {
        println!(
            "FALSE POSITIVE [{}] {} => {}",
            c.class,
            short(&c.label),
            short(why)
        );
    }
}

fn short(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.chars().count() > 220 {
        format!("{}…", s.chars().take(220).collect::<String>())
    } else {
        s
    }
}

fn pct(a: usize, n: usize) -> f64 {
    if n == 0 {
        100.0
    } else {
        a as f64 * 100.0 / n as f64
    }
}

fn quantile(sorted: &[u128], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn yaml_files(dir: &Path, ext: &[&str], out: &mut Vec<PathBuf>) -> Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let p = e?.path();
        if p.is_dir() {
            yaml_files(&p, ext, out)?;
        } else if p
            .extension()
            .and_then(|x| x.to_str())
            .is_some_and(|x| ext.contains(&x))
        {
            out.push(p);
        }
    }
    out.sort();
    Ok(())
}

fn load(path: &Path) -> Result<Vec<Yaml>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    YamlLoader::load_from_str(&text)
        .or_else(|_| {
            // gotestwaf's Go YAML reader accepts `\'` inside double quotes; YAML 1.2 does not
            YamlLoader::load_from_str(&text.replace("\\'", "'"))
        })
        .with_context(|| format!("parsing {}", path.display()))
}

fn strs(y: &Yaml) -> Vec<String> {
    y.as_vec()
        .map(|v| {
            v.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
