//! Java: platform class names and deserialization gadgets, also inside base64.

use std::sync::LazyLock;

use aho_corasick::AhoCorasick;

use crate::detect::literals;

/// A fully qualified name in the Java platform's packages (`java.io.File`, `javax.script.x`,
/// `java.Runtime`): request data has no business naming runtime classes.
pub(super) fn java_name(b: &[u8]) -> bool {
    static PACKAGES: LazyLock<AhoCorasick> =
        LazyLock::new(|| literals(&["java.", "javax.", "jdk.", "sun."]));
    // every package prefix ends in `.`
    b.contains(&b'.')
        && PACKAGES.find_iter(b).any(|m| {
            let p = m.start();
            let boundary = p == 0
                || !(b[p - 1].is_ascii_alphanumeric() || matches!(b[p - 1], b'_' | b'-' | b'.'));
            // `someone@sun.com`, `https://sun.example.org/`: a host in Sun's old domain or
            // any other, not the `sun.misc` package
            let host =
                b[p..].starts_with(b"sun.") && (b[..p].ends_with(b"@") || b[..p].ends_with(b"//"));
            boundary && !host && b.get(m.end()).is_some_and(u8::is_ascii_alphabetic)
        })
}

/// Java gadget classes hidden in base64 at any byte alignment (the value is base64 of a
/// longer serialized stream, so the class name rarely starts on a 3-byte boundary, and the
/// base64 may sit inside a larger value such as `test=<base64>`). Each name is encoded once at
/// each of the three alignments, keeping only the characters that depend on the name alone, and
/// the value is searched for those fragments in one pass (standard and URL-safe alphabets).
pub fn java_gadget_in_base64(value: &str) -> bool {
    static FRAGMENTS: LazyLock<(AhoCorasick, usize)> = LazyLock::new(|| {
        const NAMES: &[&str] = &[
            "runtime",
            "processbuilder",
            "clonetransformer",
            "forclosure",
            "instantiatefactory",
            "instantiatetransformer",
            "invokertransformer",
            "prototypeclonefactory",
            "prototypeserializationfactory",
            "whileclosure",
            "chainedtransformer",
            "templatesimpl",
        ];
        let mut fragments = Vec::new();
        for name in NAMES {
            // as written in requests (lower case) and as Java spells the class (`ProcessBuilder`)
            let mut spellings = vec![name.to_string(), java_spelling(name)];
            spellings.dedup();
            for spelling in spellings {
                for shift in 0..3 {
                    let fragment = aligned_fragment(spelling.as_bytes(), shift);
                    fragments.push(fragment.replace('+', "-").replace('/', "_"));
                    fragments.push(fragment);
                }
            }
        }
        fragments.sort();
        fragments.dedup();
        let shortest = fragments.iter().map(String::len).min().unwrap_or(0);
        #[allow(clippy::expect_used)]
        let searcher = AhoCorasick::new(&fragments).expect("base64 fragments always build");
        (searcher, shortest)
    });
    let (fragments, shortest) = &*FRAGMENTS;
    // Every fragment is base64 text (both alphabets: letters, digits, `+ / - _`), so a match
    // lies inside a run of such bytes at least as long as the shortest fragment: a value
    // without such a run (prose, where blanks and punctuation cut the runs short) has no match,
    // and the automaton is run only on the others (same verdicts).
    value.len() >= 8 && base64_run(value.as_bytes(), *shortest) && fragments.is_match(value)
}

/// Whether `b` holds `n` or more consecutive bytes of the standard or URL-safe base64 alphabet.
fn base64_run(b: &[u8], n: usize) -> bool {
    let mut run = 0;
    for &c in b {
        if c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'-' | b'_') {
            run += 1;
            if run >= n {
                return true;
            }
        } else {
            run = 0;
        }
    }
    n == 0
}

/// `invokertransformer` → `InvokerTransformer`: the gadget's Java class name.
fn java_spelling(name: &str) -> String {
    const WORDS: &[&str] = &[
        "runtime",
        "process",
        "builder",
        "clone",
        "transformer",
        "for",
        "closure",
        "instantiate",
        "factory",
        "invoker",
        "prototype",
        "serialization",
        "while",
        "chained",
        "templates",
        "impl",
    ];
    let mut out = String::new();
    let mut rest = name;
    while !rest.is_empty() {
        match WORDS.iter().find(|w| rest.starts_with(*w)) {
            Some(w) => {
                let mut c = w.chars();
                if let Some(first) = c.next() {
                    out.push(first.to_ascii_uppercase());
                    out.push_str(c.as_str());
                }
                rest = &rest[w.len()..];
            }
            None => {
                out.push_str(rest);
                break;
            }
        }
    }
    out
}

/// The base64 characters of `name` placed `shift` bytes into a 3-byte group that depend on
/// `name` only (the leading and trailing characters shared with neighbouring bytes dropped).
fn aligned_fragment(name: &[u8], shift: usize) -> String {
    let mut bytes = vec![0u8; shift];
    bytes.extend_from_slice(name);
    let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD_NO_PAD, &bytes);
    let lead = match shift {
        0 => 0,
        1 => 2,
        _ => 3,
    };
    let tail = usize::from(!bytes.len().is_multiple_of(3));
    encoded[lead..encoded.len() - tail].to_string()
}
