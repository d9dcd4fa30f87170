//! Node.js: console methods reached the way payloads reach them, and React Server Components
//! (Flight) references that walk into an object's prototype.

/// `console.log.call(this, 1)`, `console.info.apply(null, x)`, `console.warn.bind(`: a console
/// method invoked through `Function.prototype` — what server-side JS payloads write to prove
/// execution while slipping past `console.x(` filters.
pub(super) fn console_call(b: &[u8]) -> bool {
    finder!(b"console.").find_iter(b).any(|p| {
        let rest = &b[p + 8..];
        let name = rest.iter().take_while(|c| c.is_ascii_alphabetic()).count();
        let after = &rest[name..];
        name > 0
            && [&b".call("[..], b".apply(", b".bind("]
                .iter()
                .any(|m| after.len() >= m.len() && after[..m.len()].eq_ignore_ascii_case(m))
    })
}

/// `"$7:Module:prototype"`, `"$1:__proto__:then"`: a Flight reference (`$` + chunk id + `:` +
/// property path) whose path walks through `prototype`, `constructor` or `__proto__`. React
/// resolves these paths on the server; no genuine payload names those properties.
pub(super) fn flight_reference(b: &[u8]) -> bool {
    finder!(b"\"$").find_iter(b).any(|p| {
        let rest = &b[p + 2..];
        let id = rest
            .iter()
            .take(8)
            .take_while(|c| c.is_ascii_alphanumeric())
            .count();
        if id == 0 || rest.get(id) != Some(&b':') {
            return false;
        }
        let path = &rest[id + 1..];
        let end = path
            .iter()
            .take(128)
            .position(|c| *c == b'"')
            .unwrap_or(path.len().min(128));
        path[..end].split(|c| *c == b':').any(|seg| {
            [&b"prototype"[..], b"constructor", b"__proto__"]
                .iter()
                .any(|w| seg.eq_ignore_ascii_case(w))
        })
    })
}
