//! Standard Webhooks signatures: `v1,<base64 HMAC-SHA256(secret, "{id}.{timestamp}.{body}")>`.
//!
//! Every attempt is signed afresh with its own timestamp, since verifiers refuse timestamps more
//! than five minutes old. During a secret rotation the header carries one signature per live
//! secret, separated by spaces, and a verifier accepts the request when any of them matches.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use rand::Rng;
use sha2::Sha256;

const SECRET_PREFIX: &str = "whsec_";
const MIN_SECRET_BYTES: usize = 24;
const MAX_SECRET_BYTES: usize = 64;
/// How far a verifier lets a timestamp stray from its clock.
pub const TIMESTAMP_TOLERANCE_SECONDS: i64 = 5 * 60;

/// An endpoint's signing key. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

/// The error of parsing a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseSecretError {
    #[error("a secret is `whsec_` followed by base64")]
    NotBase64,
    #[error("a secret must hold 24 to 64 bytes once base64-decoded; this one holds {0}")]
    WrongLength(usize),
}

impl Secret {
    /// A new secret of 24 random bytes, as Svix makes them.
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; MIN_SECRET_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Parses `whsec_<base64>` (the prefix is optional, as in Svix).
    pub fn parse(text: &str) -> Result<Self, ParseSecretError> {
        let encoded = text.strip_prefix(SECRET_PREFIX).unwrap_or(text);
        let bytes = BASE64
            .decode(encoded)
            .map_err(|_| ParseSecretError::NotBase64)?;
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&bytes.len()) {
            return Err(ParseSecretError::WrongLength(bytes.len()));
        }
        Ok(Self(bytes))
    }

    /// The secret as users see it: `whsec_<base64>`.
    pub fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", BASE64.encode(&self.0))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// `v1,<base64 signature>` of one message.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let mac = self.mac(msg_id, timestamp, body);
        format!("v1,{}", BASE64.encode(mac))
    }

    fn mac(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .expect("HMAC takes keys of any length");
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().to_vec()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The `webhook-signature` header for a message signed with every secret in `secrets`.
pub fn signature_header<'a>(
    secrets: impl IntoIterator<Item = &'a Secret>,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .into_iter()
        .map(|secret| secret.sign(msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why a delivery did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the webhook-timestamp header is not a number of seconds")]
    BadTimestamp,
    #[error("the timestamp is {0} s away from now (more than 5 minutes)")]
    StaleTimestamp(i64),
    #[error("no v1 signature in the header matches")]
    NoMatch,
}

/// Verifies a delivery as a receiver would: the timestamp is recent and one signature matches.
pub fn verify(
    secret: &Secret,
    msg_id: &str,
    timestamp: &str,
    signature_header: &str,
    body: &[u8],
    now_unix: i64,
) -> Result<(), VerifyError> {
    let timestamp: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::BadTimestamp)?;
    let skew = now_unix - timestamp;
    if skew.abs() > TIMESTAMP_TOLERANCE_SECONDS {
        return Err(VerifyError::StaleTimestamp(skew));
    }
    let expected = secret.mac(msg_id, timestamp, body);
    let matches = signature_header
        .split_whitespace()
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|encoded| BASE64.decode(encoded).ok())
        .any(|given| subtle::ConstantTimeEq::ct_eq(given.as_slice(), expected.as_slice()).into());
    if matches {
        Ok(())
    } else {
        Err(VerifyError::NoMatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTOR_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const VECTOR_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const VECTOR_TIMESTAMP: i64 = 1649367553;
    const VECTOR_BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const VECTOR_SIGNATURE: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    #[test]
    fn signs_the_standard_webhooks_test_vector() {
        let secret = Secret::parse(VECTOR_SECRET).unwrap();
        assert_eq!(
            secret.sign(VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY),
            VECTOR_SIGNATURE
        );
        assert_eq!(secret.expose(), VECTOR_SECRET);
    }

    #[test]
    fn verifies_any_signature_of_a_rotation() {
        let old = Secret::generate();
        let new = Secret::generate();
        let header = signature_header([&new, &old], VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY);
        assert_eq!(header.split(' ').count(), 2);
        for secret in [&old, &new] {
            verify(
                secret,
                VECTOR_ID,
                "1649367553",
                &header,
                VECTOR_BODY,
                VECTOR_TIMESTAMP,
            )
            .unwrap();
        }
        let other = Secret::generate();
        assert_eq!(
            verify(
                &other,
                VECTOR_ID,
                "1649367553",
                &header,
                VECTOR_BODY,
                VECTOR_TIMESTAMP
            ),
            Err(VerifyError::NoMatch)
        );
    }

    #[test]
    fn refuses_stale_timestamps_and_tampered_bodies() {
        let secret = Secret::parse(VECTOR_SECRET).unwrap();
        let now = VECTOR_TIMESTAMP + 301;
        assert!(matches!(
            verify(
                &secret,
                VECTOR_ID,
                "1649367553",
                VECTOR_SIGNATURE,
                VECTOR_BODY,
                now
            ),
            Err(VerifyError::StaleTimestamp(301))
        ));
        assert_eq!(
            verify(
                &secret,
                VECTOR_ID,
                "1649367553",
                VECTOR_SIGNATURE,
                b"{}",
                VECTOR_TIMESTAMP
            ),
            Err(VerifyError::NoMatch)
        );
    }

    #[test]
    fn secrets_are_checked_and_never_shown() {
        assert_eq!(Secret::parse("whsec_!!!"), Err(ParseSecretError::NotBase64));
        assert_eq!(
            Secret::parse("whsec_AAAA"),
            Err(ParseSecretError::WrongLength(3))
        );
        let secret = Secret::generate();
        assert!(secret.expose().starts_with("whsec_"));
        assert!(!format!("{secret:?}").contains(&secret.expose()[6..]));
    }
}
