//! Remote file inclusion told apart by the parameter's name: an absolute URL handed to a
//! parameter that names a file, an include, a path or a template (`_CONF[path]=https://x`,
//! `mosConfig_absolute_path=http://x/`, `page=ftp://x/shell.txt`), which a PHP `include` or a
//! template loader fetches and runs. URLs in other parameters (`next=`, `url=`, `redirect=`)
//! are not file inclusions and pass, unless they name an internal host (`ssrf`).

/// Words that name what an application loads from disk (lower case, whole words of the name).
const FILE_WORDS: &[&str] = &[
    "file", "filename", "filepath", "include", "inc", "require", "path", "dir", "basedir",
    "docroot", "root", "template", "tpl", "page", "module", "mod", "lang", "language", "skin",
    "theme", "layout", "view", "conf", "config", "folder", "load",
];

/// Words that say the parameter expects a URL (`homePage`, `page_url`, `avatar_link`): the
/// application fetches or shows it, it does not include it.
const URL_WORDS: &[&str] = &[
    "url", "uri", "link", "href", "home", "website", "site", "web", "redirect", "next", "return",
    "callback", "origin", "referer", "referrer", "image", "img", "avatar", "icon", "logo", "feed",
    "webhook", "endpoint", "host", "server", "proxy", "api", "cb",
];

/// Whether `value` (decoded), sent in the parameter `name`, is a remote file inclusion.
pub fn remote_include(name: &str, value: &str) -> bool {
    let v = value.trim_start().as_bytes();
    let remote = [
        &b"http://"[..],
        b"https://",
        b"ftp://",
        b"ftps://",
        b"file://",
    ]
    .iter()
    .any(|s| v.len() > s.len() && v[..s.len()].eq_ignore_ascii_case(s));
    (remote && names_a_file(name)) || super::ssrf::fetched_internal_url(name, value)
}

/// Whether `name` has one of [`FILE_WORDS`] among its words and none of [`URL_WORDS`].
fn names_a_file(name: &str) -> bool {
    let mut found = false;
    let mut url = false;
    name_words(name, |w| {
        found |= FILE_WORDS.contains(&w);
        url |= URL_WORDS.contains(&w);
    });
    found && !url
}

/// Call `each` with every word of a parameter name, lower case: words split at
/// non-alphanumerics and at lower-to-upper case changes (`imageUrl`, `webhook_url`,
/// `_CONF[path]`); the first 128 characters count.
pub(super) fn name_words(name: &str, mut each: impl FnMut(&str)) {
    let mut word = String::new();
    let mut prev_lower = false;
    for c in name.chars().take(128) {
        if !c.is_ascii_alphanumeric() {
            if !word.is_empty() {
                each(&word);
                word.clear();
            }
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower && !word.is_empty() {
            each(&word);
            word.clear();
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        word.push(c.to_ascii_lowercase());
    }
    if !word.is_empty() {
        each(&word);
    }
}

#[cfg(test)]
mod tests {
    use super::remote_include;

    #[test]
    fn urls_in_file_parameters() {
        for (n, v) in [
            ("_CONF[path]", "https://foo.bar"),
            ("mosConfig_absolute_path", "https://foo.bar"),
            ("page", "http://evil.example/shell.txt"),
            ("include_file", "ftp://evil.example/x"),
            ("templateDir", "https://x.example/t/"),
            ("GALLERY_BASEDIR", "http://x.example/"),
            ("path[docroot]", "http://x.example/"),
            ("lang", "file:///etc/passwd"),
        ] {
            assert!(remote_include(n, v), "missed {n}={v}");
        }
    }

    #[test]
    fn other_urls_and_names_pass() {
        for (n, v) in [
            ("next", "https://example.com/a"),
            ("url", "https://example.com/a"),
            ("redirect_uri", "https://app.example.com/cb"),
            ("returnTo", "https://example.com/"),
            ("profile", "https://example.com/me"),
            ("page", "2"),
            ("file", "report.pdf"),
            ("filename", "see http://example.com"),
            ("homepage", "https://example.com"),
            ("pathway", "https://example.com"),
            ("homePage", "https://example.com"),
            ("page_url", "https://example.com/x"),
            ("callback_path", "https://example.com/cb"),
        ] {
            assert!(!remote_include(n, v), "false positive {n}={v}");
        }
    }
}
