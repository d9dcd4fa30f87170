//! Files the defender keeps in its state directory (the cached policy, spooled audit batches)
//! are sealed: an HMAC-SHA256 under a key derived from the defender credential, which the app
//! never sees. The state directory is on the app's filesystem, so a hostile app can write
//! there; without the key it cannot forge a policy the next start would trust, nor a batch the
//! defender would ship to the console under its own credential. (It can still delete files;
//! a deleted cache leaves the defender where a fresh container starts, and a deleted batch is
//! lost — the app controls its own disk.)

use hmac::Mac;
use serde::{Deserialize, Serialize};

/// The sealing key.
#[derive(Clone)]
pub(crate) struct SealKey([u8; 32]);

/// A sealed file's content: the body's text and its MAC.
#[derive(Serialize, Deserialize)]
struct Envelope {
    mac: String,
    body: String,
}

/// The file is not sealed under this key: written by something other than this defender (or
/// by one with another credential).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Forged;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

impl SealKey {
    /// The key for files of kind `purpose`, from the defender credential.
    pub(crate) fn from_token(token: &str) -> SealKey {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(b"fargate-defender state seal v1\0");
        h.update(token.as_bytes());
        SealKey(h.finalize().into())
    }

    fn mac(&self, body: &str) -> HmacSha256 {
        // HMAC takes keys of any length.
        let mut m = <HmacSha256 as hmac::KeyInit>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        m.update(body.as_bytes());
        m
    }

    /// `body` sealed, as the file's text.
    pub(crate) fn seal(&self, body: &str) -> String {
        let mac = hex(&self.mac(body).finalize().into_bytes());
        serde_json::to_string(&Envelope {
            mac,
            body: body.to_string(),
        })
        .unwrap_or_default()
    }

    /// The body of a sealed file's text, if the seal verifies.
    pub(crate) fn open(&self, text: &str) -> Result<String, Forged> {
        let env: Envelope = serde_json::from_str(text).map_err(|_| Forged)?;
        let mac = unhex(&env.mac).ok_or(Forged)?;
        self.mac(&env.body).verify_slice(&mac).map_err(|_| Forged)?;
        Ok(env.body)
    }
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_body_opens_only_unchanged_and_under_its_key() {
        let key = SealKey::from_token("cdt_one");
        let text = key.seal("{\"a\":1}");
        assert_eq!(key.open(&text), Ok("{\"a\":1}".to_string()));
        assert_eq!(SealKey::from_token("cdt_two").open(&text), Err(Forged));
        assert_eq!(
            key.open(&text.replace("\\\"a\\\":1", "\\\"a\\\":2")),
            Err(Forged)
        );
        assert_eq!(key.open("{\"a\":1}"), Err(Forged));
        assert_eq!(key.open("not json"), Err(Forged));
        let env = Envelope {
            mac: "00".repeat(32),
            body: "{\"a\":1}".into(),
        };
        assert_eq!(
            key.open(&serde_json::to_string(&env).unwrap_or_default()),
            Err(Forged)
        );
    }

    #[test]
    fn hex_round_trips_and_refuses_garbage() {
        assert_eq!(unhex(&hex(&[0, 1, 254, 255])), Some(vec![0, 1, 254, 255]));
        assert_eq!(unhex("0"), None);
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex("é0"), None);
    }
}
