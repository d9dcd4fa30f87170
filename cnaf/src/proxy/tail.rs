//! Inspection of the part of a body that streams past `body_limit`: each chunk (with the end of
//! the previous one, so a value split across chunks is still seen) goes through the detectors
//! while it is forwarded; a `prevent` finding stops the upload before the app has all of it.

use std::sync::Mutex;

use crate::model::Finding;
use crate::policy::{CnafEffect, Protections};

/// Bytes of the previous chunk kept in front of the next one.
const OVERLAP: usize = 2048;

pub(crate) struct Tail {
    protections: Protections,
    form: bool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    carry: Vec<u8>,
    findings: Vec<Finding>,
    blocked: bool,
}

impl Tail {
    /// A tail inspector for a text body, or `None` (binary or compressed body, or nothing
    /// enabled). `content_encoding` is the request's `Content-Encoding`, if any: a compressed
    /// stream cannot be read from its middle, so only its decompressed prefix is inspected.
    pub(crate) fn new(
        protections: Protections,
        content_type: &str,
        content_encoding: Option<&str>,
        prefix: &[u8],
    ) -> Option<Tail> {
        let encoded = content_encoding.is_some_and(|ce| {
            ce.split(',')
                .any(|c| !c.trim().is_empty() && !c.trim().eq_ignore_ascii_case("identity"))
        });
        let ct = content_type.to_ascii_lowercase();
        let binary = [
            "image/",
            "audio/",
            "video/",
            "font/",
            "application/octet-stream",
            "application/zip",
            "application/gzip",
            "application/pdf",
            "application/grpc",
            "application/x-protobuf",
            "multipart/",
        ]
        .iter()
        .any(|t| ct.starts_with(t));
        let nothing_on = protections
            .iter()
            .iter()
            .all(|(_, e)| *e == CnafEffect::Disable);
        if binary || encoded || nothing_on {
            return None;
        }
        let carry = prefix[prefix.len().saturating_sub(OVERLAP)..].to_vec();
        Some(Tail {
            protections,
            form: ct.contains("form-urlencoded"),
            state: Mutex::new(State {
                carry,
                ..State::default()
            }),
        })
    }

    /// Inspect the next chunk; true once a `prevent` finding means the request must stop.
    pub(crate) fn check(&self, data: &[u8]) -> bool {
        let Ok(mut st) = self.state.lock() else {
            return false;
        };
        if st.blocked {
            return true;
        }
        if data.contains(&0) {
            // binary content from here on: nothing to read as text
            st.carry.clear();
            return false;
        }
        let mut window = std::mem::take(&mut st.carry);
        window.extend_from_slice(data);
        let text = String::from_utf8_lossy(&window);
        for f in crate::inspect_fragment(&text, self.form, &self.protections) {
            if !st.findings.iter().any(|g| g.attack == f.attack) {
                st.blocked |= f.effect == CnafEffect::Prevent;
                st.findings.push(f);
            }
        }
        st.carry = window[window.len().saturating_sub(OVERLAP)..].to_vec();
        st.blocked
    }

    /// The findings so far, and whether one of them stopped the request.
    pub(crate) fn outcome(&self) -> (Vec<Finding>, bool) {
        match self.state.lock() {
            Ok(mut st) => (std::mem::take(&mut st.findings), st.blocked),
            Err(_) => (Vec::new(), false),
        }
    }
}
