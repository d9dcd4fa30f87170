//! XML that makes the parser fetch: external entities and DTDs (`<!ENTITY x SYSTEM "...">`),
//! XInclude, and XML Schema inclusions of remote schemas.

/// `<!ENTITY x SYSTEM "...">`, `<!DOCTYPE x SYSTEM "...">`, `<!ENTITY % y PUBLIC ...>`,
/// `<xi:include href=...>`.
pub(super) fn external_entity(n: &[u8]) -> bool {
    for decl in [&b"<!entity"[..], b"<!doctype"] {
        for p in memchr::memmem::find_iter(n, decl) {
            let end = memchr::memchr(b'>', &n[p..]).map_or(n.len(), |e| p + e);
            let d = &n[p..end];
            if finder!(b" system ").find(d).is_some()
                || finder!(b" system\"").find(d).is_some()
                || finder!(b" public ").find(d).is_some()
            {
                return true;
            }
        }
    }
    finder!(b"<xi:include").find(n).is_some() || schema_inclusion(n)
}

/// `<xs:include schemaLocation="http://...">`, `<xsd:import namespace="http://...">`: an XML
/// Schema in the request that pulls another schema in, which a validating parser fetches (an
/// out-of-band XXE probe). Documents that merely point at their schema (`xsi:schemaLocation`
/// on a root element, as Maven and SOAP files do) are left alone.
fn schema_inclusion(n: &[u8]) -> bool {
    [&b"<xs:"[..], b"<xsd:"].iter().any(|prefix| {
        memchr::memmem::find_iter(n, prefix).any(|p| {
            let rest = &n[p + prefix.len()..];
            let tag = ["include", "import", "redefine", "override"]
                .iter()
                .any(|t| rest.starts_with(t.as_bytes()));
            if !tag {
                return false;
            }
            let end = memchr::memchr(b'>', rest).unwrap_or(rest.len());
            let attrs = &rest[..end];
            ["schemalocation=", "namespace="].iter().any(|a| {
                memchr::memmem::find(attrs, a.as_bytes()).is_some_and(|q| {
                    let v = &attrs[q + a.len()..];
                    let v = v
                        .strip_prefix(b"\"")
                        .or_else(|| v.strip_prefix(b"'"))
                        .unwrap_or(v);
                    v.starts_with(b"http") || v.starts_with(b"ftp") || v.starts_with(b"file")
                })
            })
        })
    })
}
