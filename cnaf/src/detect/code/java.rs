//! Java: platform class names and deserialization gadgets, also inside base64.

use std::sync::LazyLock;

use aho_corasick::AhoCorasick;

use crate::detect::literals;

/// A fully qualified name in the Java platform's packages (`java.io.File`, `javax.script.x`,
/// `java.Runtime`): request data has no business naming runtime classes.
pub(super) fn java_name(b: &[u8]) -> bool {
    static PACKAGES: LazyLock<AhoCorasick> =
        LazyLock::new(|| literals(&["java.", "javax.", "jdk.", "sun."]));
    PACKAGES.find_iter(b).any(|m| {
        let p = m.start();
        let boundary =
            p == 0 || !(b[p - 1].is_ascii_alphanumeric() || matches!(b[p - 1], b'_' | b'-' | b'.'));
        boundary && b.get(m.end()).is_some_and(u8::is_ascii_alphabetic)
    })
}

/// Java gadget classes hidden in base64 at any byte alignment (the value is base64 of a
/// longer serialized stream, so the class name rarely starts on a 3-byte boundary).
pub fn java_gadget_in_base64(value: &str) -> bool {
    pub(super) static GADGETS: LazyLock<AhoCorasick> = LazyLock::new(|| {
        literals(&[
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
        ])
    });
    let t = value.trim().trim_end_matches('=');
    if t.len() < 8
        || !t
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'-' | b'_'))
    {
        return false;
    }
    let std: String = t
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    (0..3).any(|shift| {
        let mut s = "A".repeat(shift);
        s.push_str(&std);
        let keep = if s.len() % 4 == 1 {
            s.len() - 1
        } else {
            s.len()
        };
        base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD_NO_PAD,
            &s[..keep],
        )
        .is_ok_and(|bytes| GADGETS.is_match(&bytes))
    })
}
