//! Standard Webhooks signatures, both kinds the specification defines:
//!
//! - symmetric: `v1,<base64 HMAC-SHA256(secret, "{id}.{timestamp}.{body}")>` with a `whsec_`
//!   secret shared by sender and receiver;
//! - asymmetric: `v1a,<base64 ed25519 signature of "{id}.{timestamp}.{body}">` with a `whsk_`
//!   secret key kept by the sender and a `whpk_` public key given to the receiver, who can
//!   verify but never sign. Keys are encoded as Svix encodes them: `whsk_` and the base64 of the
//!   64-byte secret key (seed, then public key), `whpk_` and the base64 of the 32-byte public
//!   key; a 32-byte seed alone is accepted as a `whsk_` too.
//!
//! Every attempt is signed afresh with its own timestamp, since verifiers refuse timestamps more
//! than five minutes old. During a secret rotation the header carries one signature per live
//! secret, separated by spaces, and a verifier accepts the request when any of them matches.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use hmac::{Hmac, KeyInit, Mac};
use rand::Rng;
use sha2::Sha256;

const SECRET_PREFIX: &str = "whsec_";
const SECRET_KEY_PREFIX: &str = "whsk_";
const PUBLIC_KEY_PREFIX: &str = "whpk_";
const MIN_SECRET_BYTES: usize = 24;
const MAX_SECRET_BYTES: usize = 64;
/// How far a verifier lets a timestamp stray from its clock.
pub const TIMESTAMP_TOLERANCE_SECONDS: i64 = 5 * 60;

/// The signature scheme of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignatureType {
    /// HMAC-SHA256 with a shared `whsec_` secret (`v1,`).
    #[default]
    Hmac,
    /// ed25519 with a `whsk_` secret key and a `whpk_` public key (`v1a,`).
    Ed25519,
}

impl SignatureType {
    /// `hmac` or `ed25519`, as the setting spells them.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "hmac" => Some(Self::Hmac),
            "ed25519" => Some(Self::Ed25519),
            _ => None,
        }
    }
}

/// An endpoint's signing key. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Key);

#[derive(Clone, PartialEq, Eq)]
enum Key {
    Hmac(Vec<u8>),
    Ed25519(Box<SigningKey>),
}

/// The error of parsing a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseSecretError {
    #[error("a secret is `whsec_` (or `whsk_`) followed by base64")]
    NotBase64,
    #[error("a secret must hold 24 to 64 bytes once base64-decoded; this one holds {0}")]
    WrongLength(usize),
    #[error(
        "a `whsk_` key holds an ed25519 secret key: 32 bytes (the seed) or 64 (seed and public \
         key) once base64-decoded; this one holds {0}"
    )]
    WrongKeyLength(usize),
    #[error("the public half of this `whsk_` key does not belong to its seed")]
    MismatchedKey,
    #[error("a `whpk_` key holds an ed25519 public key: 32 valid bytes once base64-decoded")]
    BadPublicKey,
    #[error("a `whpk_` public key can verify but not sign; give the `whsk_` secret key")]
    PublicKeyGiven,
}

impl Secret {
    /// A new secret of 24 random bytes, as Svix makes them.
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; MIN_SECRET_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        Self(Key::Hmac(bytes))
    }

    /// A new ed25519 secret key.
    pub fn generate_ed25519() -> Self {
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        Self(Key::Ed25519(Box::new(SigningKey::from_bytes(&seed))))
    }

    /// A new secret of the given kind.
    pub fn generate_of(kind: SignatureType) -> Self {
        match kind {
            SignatureType::Hmac => Self::generate(),
            SignatureType::Ed25519 => Self::generate_ed25519(),
        }
    }

    /// Parses `whsec_<base64>` (the prefix is optional, as in Svix) or `whsk_<base64>`.
    pub fn parse(text: &str) -> Result<Self, ParseSecretError> {
        if text.starts_with(PUBLIC_KEY_PREFIX) {
            return Err(ParseSecretError::PublicKeyGiven);
        }
        if let Some(encoded) = text.strip_prefix(SECRET_KEY_PREFIX) {
            let bytes = BASE64
                .decode(encoded)
                .map_err(|_| ParseSecretError::NotBase64)?;
            let seed: [u8; 32] = bytes
                .get(..32)
                .and_then(|seed| seed.try_into().ok())
                .filter(|_| bytes.len() == 32 || bytes.len() == 64)
                .ok_or(ParseSecretError::WrongKeyLength(bytes.len()))?;
            let key = SigningKey::from_bytes(&seed);
            if bytes.len() == 64 && key.verifying_key().as_bytes()[..] != bytes[32..] {
                return Err(ParseSecretError::MismatchedKey);
            }
            return Ok(Self(Key::Ed25519(Box::new(key))));
        }
        let encoded = text.strip_prefix(SECRET_PREFIX).unwrap_or(text);
        let bytes = BASE64
            .decode(encoded)
            .map_err(|_| ParseSecretError::NotBase64)?;
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&bytes.len()) {
            return Err(ParseSecretError::WrongLength(bytes.len()));
        }
        Ok(Self(Key::Hmac(bytes)))
    }

    /// The secret in full, as stored: `whsec_<base64>`, or `whsk_<base64>` of an ed25519 key.
    pub fn expose(&self) -> String {
        match &self.0 {
            Key::Hmac(bytes) => format!("{SECRET_PREFIX}{}", BASE64.encode(bytes)),
            Key::Ed25519(key) => {
                format!(
                    "{SECRET_KEY_PREFIX}{}",
                    BASE64.encode(key.to_keypair_bytes())
                )
            }
        }
    }

    /// What a receiver needs to verify: the `whsec_` secret itself, or the `whpk_` public key
    /// of an ed25519 secret key.
    pub fn receiver_key(&self) -> String {
        match &self.0 {
            Key::Hmac(_) => self.expose(),
            Key::Ed25519(key) => public_key_text(&key.verifying_key()),
        }
    }

    pub fn signature_type(&self) -> SignatureType {
        match &self.0 {
            Key::Hmac(_) => SignatureType::Hmac,
            Key::Ed25519(_) => SignatureType::Ed25519,
        }
    }

    /// The key that verifies this secret's signatures.
    pub fn verify_key(&self) -> VerifyKey {
        match &self.0 {
            Key::Hmac(_) => VerifyKey::Hmac(self.clone()),
            Key::Ed25519(key) => VerifyKey::Ed25519(key.verifying_key()),
        }
    }

    /// `v1,<base64 HMAC>` or `v1a,<base64 ed25519 signature>` of one message.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let signed = signed_content(msg_id, timestamp, body);
        match &self.0 {
            Key::Hmac(secret) => format!("v1,{}", BASE64.encode(hmac(secret, &signed))),
            Key::Ed25519(key) => format!("v1a,{}", BASE64.encode(key.sign(&signed).to_bytes())),
        }
    }
}

fn public_key_text(key: &VerifyingKey) -> String {
    format!("{PUBLIC_KEY_PREFIX}{}", BASE64.encode(key.as_bytes()))
}

/// `{id}.{timestamp}.{body}`, what both kinds sign.
fn signed_content(msg_id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let timestamp = timestamp.to_string();
    let mut content = Vec::with_capacity(msg_id.len() + timestamp.len() + body.len() + 2);
    content.extend_from_slice(msg_id.as_bytes());
    content.push(b'.');
    content.extend_from_slice(timestamp.as_bytes());
    content.push(b'.');
    content.extend_from_slice(body);
    content
}

fn hmac(secret: &[u8], content: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(content);
    mac.finalize().into_bytes().to_vec()
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// What a receiver verifies with: a `whsec_` secret, or a `whpk_` public key.
#[derive(Clone, PartialEq, Eq)]
pub enum VerifyKey {
    Hmac(Secret),
    Ed25519(VerifyingKey),
}

impl VerifyKey {
    /// Parses `whsec_…`, `whpk_…`, or `whsk_…` (which verifies with its public half).
    pub fn parse(text: &str) -> Result<Self, ParseSecretError> {
        if let Some(encoded) = text.strip_prefix(PUBLIC_KEY_PREFIX) {
            let bytes: [u8; 32] = BASE64
                .decode(encoded)
                .map_err(|_| ParseSecretError::NotBase64)?
                .try_into()
                .map_err(|_| ParseSecretError::BadPublicKey)?;
            return VerifyingKey::from_bytes(&bytes)
                .map(Self::Ed25519)
                .map_err(|_| ParseSecretError::BadPublicKey);
        }
        Secret::parse(text).map(|secret| secret.verify_key())
    }
}

impl fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Hmac(_) => f.write_str("VerifyKey::Hmac(<redacted>)"),
            Self::Ed25519(key) => write!(f, "VerifyKey::Ed25519({})", public_key_text(key)),
        }
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
    #[error("no signature of this key's kind in the header matches")]
    NoMatch,
}

/// Verifies a delivery as a receiver holding the secret would: the timestamp is recent and one
/// signature matches.
pub fn verify(
    secret: &Secret,
    msg_id: &str,
    timestamp: &str,
    signature_header: &str,
    body: &[u8],
    now_unix: i64,
) -> Result<(), VerifyError> {
    verify_with(
        &secret.verify_key(),
        msg_id,
        timestamp,
        signature_header,
        body,
        now_unix,
    )
}

/// Verifies a delivery with a `whsec_` secret (`v1,` signatures) or a `whpk_` public key
/// (`v1a,` signatures).
pub fn verify_with(
    key: &VerifyKey,
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
    let content = signed_content(msg_id, timestamp, body);
    // The HMAC a `v1` signature must equal; ed25519 signatures are checked one by one.
    let (version, expected) = match key {
        VerifyKey::Hmac(secret) => {
            let Key::Hmac(bytes) = &secret.0 else {
                unreachable!("an HMAC verify key holds an HMAC secret")
            };
            ("v1,", Some(hmac(bytes, &content)))
        }
        VerifyKey::Ed25519(_) => ("v1a,", None),
    };
    let matches = |given: &[u8]| match (key, &expected) {
        (VerifyKey::Ed25519(public), _) => ed25519_dalek::Signature::from_slice(given)
            .is_ok_and(|signature| public.verify(&content, &signature).is_ok()),
        (VerifyKey::Hmac(_), Some(expected)) => {
            subtle::ConstantTimeEq::ct_eq(given, expected.as_slice()).into()
        }
        (VerifyKey::Hmac(_), None) => false,
    };
    let found = signature_header
        .split_whitespace()
        .filter_map(|entry| entry.strip_prefix(version))
        .filter_map(|encoded| BASE64.decode(encoded).ok())
        .any(|given| matches(&given));
    if found {
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

    #[test]
    fn ed25519_keys_sign_v1a_and_verify_with_the_public_key_alone() {
        let secret = Secret::generate_ed25519();
        assert!(secret.expose().starts_with("whsk_"));
        assert_eq!(Secret::parse(&secret.expose()).unwrap(), secret);
        let public = secret.receiver_key();
        assert!(public.starts_with("whpk_"));
        assert_eq!(
            Secret::parse(&public),
            Err(ParseSecretError::PublicKeyGiven)
        );
        let signature = secret.sign(VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY);
        assert!(signature.starts_with("v1a,"));
        let key = VerifyKey::parse(&public).unwrap();
        let check = |header: &str, body: &[u8]| {
            verify_with(
                &key,
                VECTOR_ID,
                "1649367553",
                header,
                body,
                VECTOR_TIMESTAMP,
            )
        };
        check(&signature, VECTOR_BODY).unwrap();
        assert_eq!(check(&signature, b"{}"), Err(VerifyError::NoMatch));
        // An HMAC signature of the same content is not an ed25519 one.
        let hmac = Secret::parse(VECTOR_SECRET).unwrap();
        assert_eq!(
            check(VECTOR_SIGNATURE, VECTOR_BODY),
            Err(VerifyError::NoMatch)
        );
        // A rotation from HMAC to ed25519 signs with both; each key finds its own.
        let header = signature_header([&secret, &hmac], VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY);
        check(&header, VECTOR_BODY).unwrap();
        verify(
            &hmac,
            VECTOR_ID,
            "1649367553",
            &header,
            VECTOR_BODY,
            VECTOR_TIMESTAMP,
        )
        .unwrap();
    }

    #[test]
    fn whsk_keys_take_a_seed_or_a_keypair_and_refuse_a_mismatch() {
        let secret = Secret::generate_ed25519();
        let bytes = BASE64
            .decode(secret.expose().strip_prefix("whsk_").unwrap())
            .unwrap();
        assert_eq!(bytes.len(), 64);
        let seed_only = format!("whsk_{}", BASE64.encode(&bytes[..32]));
        assert_eq!(Secret::parse(&seed_only).unwrap(), secret);
        let mut wrong = bytes.clone();
        wrong[40] ^= 1;
        assert_eq!(
            Secret::parse(&format!("whsk_{}", BASE64.encode(&wrong))),
            Err(ParseSecretError::MismatchedKey)
        );
        assert_eq!(
            Secret::parse("whsk_AAAA"),
            Err(ParseSecretError::WrongKeyLength(3))
        );
        assert!(!format!("{secret:?}").contains(&secret.expose()[5..]));
    }
}
