//! External resources an XML document asks its parser to fetch outside the DTD: XML Schema
//! `include`/`import`/`redefine`/`override`, XInclude `include`, and `xsi:schemaLocation` /
//! `xsi:noNamespaceSchemaLocation` hints. A validating or XInclude-aware parser that honours
//! them fetches the URL (server-side request forgery, file disclosure), the same risk as an
//! external entity, so they are judged by the file-inclusion protection.
//!
//! Clients rarely send schemas to a server; what they do send is the conventional
//! `xsi:schemaLocation="NS LOCATION"` pair whose location lives on the namespace's own host
//! (`http://maven.apache.org/POM/4.0.0 http://maven.apache.org/xsd/maven-4.0.0.xsd`). That form
//! passes; a location on another host, a non-HTTP scheme, or a malformed hint is flagged.

use std::collections::HashMap;

const XSD: &str = "http://www.w3.org/2001/XMLSchema";
const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
const XINCLUDE: &[&str] = &[
    "http://www.w3.org/2001/XInclude",
    "http://www.w3.org/2003/XInclude",
];

/// One attribute of an element start: prefix, local name, value.
pub(crate) struct Attr<'a> {
    pub prefix: &'a str,
    pub local: &'a str,
    pub value: &'a str,
}

/// The namespace prefixes declared so far (`xmlns:p="..."`, `xmlns="..."` under the empty
/// prefix). Scoping is document-wide: a prefix once bound stays bound, which errs towards
/// recognising a schema element.
#[derive(Default)]
pub(crate) struct Namespaces {
    bound: HashMap<String, String>,
}

impl Namespaces {
    /// Record the declarations among an element's attributes.
    pub(crate) fn declare(&mut self, attrs: &[Attr<'_>]) {
        for a in attrs {
            if a.prefix == "xmlns" {
                self.bound.insert(a.local.to_string(), a.value.to_string());
            } else if a.prefix.is_empty() && a.local == "xmlns" {
                self.bound.insert(String::new(), a.value.to_string());
            }
        }
    }

    fn uri(&self, prefix: &str) -> Option<&str> {
        self.bound.get(prefix).map(String::as_str)
    }
}

/// The attribute (local name) of element `prefix:local` that points the parser at an external
/// resource, if any.
pub(crate) fn external_reference<'a>(
    ns: &Namespaces,
    prefix: &str,
    local: &str,
    attrs: &'a [Attr<'a>],
) -> Option<&'a Attr<'a>> {
    let element_ns = ns.uri(prefix);
    let schema_directive =
        element_ns == Some(XSD) && matches!(local, "include" | "import" | "redefine" | "override");
    let xinclude = element_ns.is_some_and(|u| XINCLUDE.contains(&u)) && local == "include";
    if schema_directive || xinclude {
        if let Some(a) = attrs.iter().find(|a| {
            a.prefix.is_empty()
                && matches!(a.local, "schemaLocation" | "namespace" | "href")
                && absolute_url(a.value).is_some()
        }) {
            return Some(a);
        }
    }
    attrs.iter().find(|a| {
        !a.prefix.is_empty()
            && ns.uri(a.prefix) == Some(XSI)
            && match a.local {
                "schemaLocation" => !conventional_schema_location(a.value),
                "noNamespaceSchemaLocation" => absolute_url(a.value).is_some(),
                _ => false,
            }
    })
}

/// `NS LOCATION` pairs whose locations are HTTP(S) URLs on their namespace's host (or
/// relative).
fn conventional_schema_location(value: &str) -> bool {
    let tokens: Vec<&str> = value.split_ascii_whitespace().collect();
    if !tokens.len().is_multiple_of(2) {
        return tokens.iter().all(|t| absolute_url(t).is_none());
    }
    tokens.chunks(2).all(|pair| match absolute_url(pair[1]) {
        None => true,
        Some((scheme, host)) => {
            matches!(scheme.as_str(), "http" | "https")
                && absolute_url(pair[0]).is_some_and(|(_, ns_host)| same_site(&ns_host, &host))
        }
    })
}

/// Two hosts that belong to the same site: equal, or one a subdomain of the other's
/// registrable tail (`www.w3.org` / `w3.org`).
fn same_site(a: &str, b: &str) -> bool {
    fn tail(h: &str) -> &str {
        let mut dots = h.rmatch_indices('.');
        dots.next();
        match dots.next() {
            Some((i, _)) => &h[i + 1..],
            None => h,
        }
    }
    a == b || tail(a) == tail(b)
}

/// `(scheme, host)` of an absolute URL (`scheme://host...` or `file:...`), lower-cased.
fn absolute_url(v: &str) -> Option<(String, String)> {
    let v = v.trim();
    let (scheme, rest) = v.split_once(':')?;
    if scheme.is_empty()
        || !scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return None;
    }
    let scheme = scheme.to_ascii_lowercase();
    if let Some(after) = rest.strip_prefix("//") {
        let host = after
            .split(['/', '?', '#'])
            .next()
            .unwrap_or("")
            .rsplit('@')
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        return Some((scheme, host));
    }
    // `file:/etc/passwd`, `jar:http://...`, `php:...`: scheme-led references without `//`
    matches!(
        scheme.as_str(),
        "file" | "jar" | "netdoc" | "php" | "expect" | "data"
    )
    .then(|| (scheme, String::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(list: &[(&'static str, &'static str, &'static str)]) -> Vec<Attr<'static>> {
        list.iter()
            .map(|&(prefix, local, value)| Attr {
                prefix,
                local,
                value,
            })
            .collect()
    }

    fn flagged(
        prefix: &str,
        local: &str,
        list: &[(&'static str, &'static str, &'static str)],
    ) -> bool {
        let a = attrs(list);
        let mut ns = Namespaces::default();
        ns.declare(&a);
        external_reference(&ns, prefix, local, &a).is_some()
    }

    type Attr3 = (&'static str, &'static str, &'static str);
    type Attrs = &'static [Attr3];

    #[test]
    fn schema_directives_with_urls_are_flagged() {
        const XS: (&str, &str, &str) = ("xmlns", "xs", XSD);
        const XI: (&str, &str, &str) = ("xmlns", "xi", "http://www.w3.org/2001/XInclude");
        let cases: [(&str, &str, Attrs, bool); 6] = [
            (
                "xs",
                "include",
                &[XS, ("", "namespace", "http://evil.example/")],
                true,
            ),
            (
                "xs",
                "import",
                &[XS, ("", "schemaLocation", "file:///etc/passwd")],
                true,
            ),
            (
                "xi",
                "include",
                &[XI, ("", "href", "http://169.254.169.254/latest/")],
                true,
            ),
            // a relative include, an unbound prefix, or another element is not an external fetch
            (
                "xs",
                "include",
                &[XS, ("", "schemaLocation", "common.xsd")],
                false,
            ),
            (
                "xs",
                "include",
                &[("", "namespace", "http://evil.example/")],
                false,
            ),
            (
                "xs",
                "element",
                &[XS, ("", "name", "http://x.example/")],
                false,
            ),
        ];
        for (prefix, local, list, want) in cases {
            assert_eq!(
                flagged(prefix, local, list),
                want,
                "{prefix}:{local} {list:?}"
            );
        }
    }

    #[test]
    fn schema_location_hints() {
        const XSI_NS: (&str, &str, &str) = ("xmlns", "xsi", XSI);
        let hint = |value: &'static str| [XSI_NS, ("xsi", "schemaLocation", value)];
        let cases: [([Attr3; 2], bool); 9] = [
            // the conventional pair, on the namespace's own site
            (
                hint(
                    "http://maven.apache.org/POM/4.0.0 http://maven.apache.org/xsd/maven-4.0.0.xsd",
                ),
                false,
            ),
            (
                hint("http://www.w3.org/2000/svg https://w3.org/svg.xsd"),
                false,
            ),
            (hint("urn:orders order.xsd"), false),
            // a lone URL, another host, a non-HTTP scheme
            (hint("http://attacker.example/"), true),
            (
                hint("http://maven.apache.org/POM/4.0.0 http://10.0.0.5/x.xsd"),
                true,
            ),
            (hint("http://a.example/ns file:///etc/passwd"), true),
            (
                [
                    XSI_NS,
                    (
                        "xsi",
                        "noNamespaceSchemaLocation",
                        "https://attacker.example/s.xsd",
                    ),
                ],
                true,
            ),
            (
                [XSI_NS, ("xsi", "noNamespaceSchemaLocation", "local.xsd")],
                false,
            ),
            // `xsi` bound to something else is just an attribute
            (
                [
                    ("xmlns", "xsi", "urn:other"),
                    ("xsi", "schemaLocation", "http://attacker.example/"),
                ],
                false,
            ),
        ];
        for (list, want) in cases {
            assert_eq!(flagged("", "x", &list), want, "{list:?}");
        }
    }

    #[test]
    fn urls() {
        assert_eq!(
            absolute_url(" HTTP://User@Host.Example:8080/a?b"),
            Some(("http".into(), "host.example:8080".into()))
        );
        assert_eq!(
            absolute_url("file:/etc/passwd"),
            Some(("file".into(), String::new()))
        );
        assert_eq!(absolute_url("urn:orders"), None);
        assert_eq!(absolute_url("a.xsd"), None);
        assert_eq!(absolute_url("1:2"), None);
        assert!(same_site("www.w3.org", "w3.org"));
        assert!(!same_site("maven.apache.org", "evil.org"));
    }
}
