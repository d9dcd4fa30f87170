//! Property tests: the request parsers and decoders behind `cnaf::inspect` never panic, whatever
//! the bytes, and findings stay bounded (one per class, short single-line snippets).

use cnaf::{inspect, policy, Attack, CnafEffect, Paranoia, RequestParts};
use proptest::prelude::*;

/// Characters that drive the decoders and tokenizers into their interesting states.
const SPICY: &str = "[%&#;\\\\'\"<>(){}\\[\\]$`|=a-zA-Z0-9 \\-.*/@!?:,+~^\\n\\r\\t\u{0}\u{c0}\u{ff0c}\u{560d}]{0,160}";

fn content_type() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just(""),
        Just("application/json"),
        Just("application/x-www-form-urlencoded"),
        Just("multipart/form-data; boundary=XyZ"),
        Just("multipart/form-data; boundary="),
        Just("text/xml"),
        Just("application/soap+xml"),
        Just("text/plain"),
        Just("application/octet-stream"),
    ]
}

/// Inspect at paranoia levels 1 and 4 (level 4 runs every rule of levels 2 and 3 too).
fn check(parts: &RequestParts, body: &[u8]) {
    for level in [Paranoia::MIN, Paranoia::DEFAULT, Paranoia::MAX] {
        let v = inspect(parts, body, &policy::all(CnafEffect::Prevent).at(level));
        assert!(v.findings.len() <= Attack::ALL.len());
        for f in &v.findings {
            assert!(f.snippet.chars().count() <= cnaf::model::SNIPPET_MAX + 1);
            assert!(!f.snippet.contains('\n') && !f.snippet.contains('\r'));
        }
    }
}

/// `text` in `coding`.
fn compress(coding: &str, text: &[u8]) -> Vec<u8> {
    use std::io::Write;
    match coding {
        "br" => {
            let mut out = Vec::new();
            let params = brotli::enc::BrotliEncoderParams::default();
            if let Err(e) = brotli::BrotliCompress(&mut &text[..], &mut out, &params) {
                panic!("brotli: {e}");
            }
            out
        }
        "zstd" => {
            ruzstd::encoding::compress_to_vec(text, ruzstd::encoding::CompressionLevel::Fastest)
        }
        "deflate" => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(text).unwrap_or_else(|e| panic!("{e}"));
            e.finish().unwrap_or_else(|e| panic!("{e}"))
        }
        _ => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(text).unwrap_or_else(|e| panic!("{e}"));
            e.finish().unwrap_or_else(|e| panic!("{e}"))
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(768))]

    #[test]
    fn arbitrary_bytes_in_every_body_type(ct in content_type(), body in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let parts = RequestParts::new("POST", "/x").header("Host", "a").header("Content-Type", ct);
        check(&parts, &body);
    }

    #[test]
    fn arbitrary_and_damaged_compressed_bodies(
        ct in content_type(),
        coding in prop_oneof![Just("gzip"), Just("deflate"), Just("x-gzip, identity"), Just("br"), Just("zstd")],
        text in SPICY,
        garbage in proptest::collection::vec(any::<u8>(), 0..512),
        cut in 0usize..4096,
        flip in 0usize..4096,
    ) {
        let parts = RequestParts::new("POST", "/x")
            .header("Host", "a")
            .header("Content-Type", ct)
            .header("Content-Encoding", coding);
        // bytes that are not compressed at all
        check(&parts, &garbage);
        // a valid stream, then cut short and with one byte damaged
        let mut z = compress(coding, text.as_bytes());
        check(&parts, &z);
        check(&parts, &z[..cut.min(z.len())]);
        if !z.is_empty() {
            let i = flip % z.len();
            z[i] ^= 0x5a;
            check(&parts, &z);
        }
    }

    #[test]
    fn spicy_text_in_every_location(
        ct in content_type(),
        target in SPICY,
        header in SPICY,
        cookie in SPICY,
        body in SPICY,
    ) {
        let parts = RequestParts::new("PUT", &format!("/{target}"))
            .header("Host", "a")
            .header("Content-Type", ct)
            .header("User-Agent", &header)
            .header("X-Custom", &header)
            .header("Cookie", &cookie)
            .header("Referer", &target);
        check(&parts, body.as_bytes());
        // the same text wrapped the ways bodies nest it
        check(&parts, format!("{{\"k\":\"{body}\",\"{body}\":[1,{{\"a\":\"{body}\"}}]}}").as_bytes());
        check(&parts, format!("<r a=\"{body}\"><![CDATA[{body}]]>{body}</r>").as_bytes());
        check(&parts, format!("<s:schema xmlns:s=\"http://www.w3.org/2001/XMLSchema\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:schemaLocation=\"{body}\"><s:include schemaLocation=\"{body}\"/></s:schema>").as_bytes());
        check(&parts, format!("--XyZ\r\nContent-Disposition: form-data; name=\"{body}\"; filename=\"{body}\"\r\n\r\n{body}\r\n--XyZ--").as_bytes());
    }

    #[test]
    fn deep_and_truncated_structures(depth in 0usize..400, cut in 0usize..64) {
        let json = format!("{}\"v\"{}", "[".repeat(depth), "]".repeat(depth));
        let xml = format!("{}x{}", "<a>".repeat(depth), "</a>".repeat(depth));
        let parts = RequestParts::new("POST", "/").header("Host", "a").header("Content-Type", "application/json");
        check(&parts, &json.as_bytes()[..json.len().saturating_sub(cut)]);
        let parts = RequestParts::new("POST", "/").header("Host", "a").header("Content-Type", "text/xml");
        check(&parts, &xml.as_bytes()[..xml.len().saturating_sub(cut)]);
    }
}
