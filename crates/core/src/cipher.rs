//! Endpoint secrets at rest: XChaCha20-Poly1305 under the keys of `WEBHOOKD_ENCRYPTION_KEY`.
//!
//! The setting is a comma-separated list of keys, each the standard base64 of 32 random bytes
//! (`openssl rand -base64 32`). The first key seals; every key opens, so keys rotate by putting
//! a new key first, running `webhookd secrets reencrypt`, then dropping the old key.
//!
//! A sealed value reads `enc1:<key id>:<base64(nonce ‖ ciphertext)>`, the key id being the first
//! four bytes of the key's SHA-256 in hex. A value without the prefix is plain text, which is
//! how secrets stored before encryption was turned on still open.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::Rng;
use sha2::{Digest, Sha256};

/// How every sealed value begins.
pub const SEALED_PREFIX: &str = "enc1:";
const NONCE_BYTES: usize = 24;
const KEY_BYTES: usize = 32;

/// The keys that seal and open secrets. `Debug` shows only key ids.
#[derive(Clone)]
pub struct SecretCipher {
    keys: Vec<(String, XChaCha20Poly1305)>,
}

/// Why the key setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseKeyError {
    #[error("key {0} is not base64 (write each key as `openssl rand -base64 32` prints it)")]
    NotBase64(usize),
    #[error(
        "key {position} holds {bytes} bytes; each key must hold exactly 32 (`openssl rand -base64 32`)"
    )]
    WrongLength { position: usize, bytes: usize },
    #[error("no key given")]
    Empty,
}

/// Why a stored secret could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error(
        "a secret is sealed with key {0}, which is not in WEBHOOKD_ENCRYPTION_KEY: add that key \
         back (keys rotate by putting the new key first and keeping the old one until \
         `webhookd secrets reencrypt` has run)"
    )]
    UnknownKey(String),
    #[error("a secret is sealed but WEBHOOKD_ENCRYPTION_KEY is not set")]
    NoKeys,
    #[error("a sealed secret is damaged or was sealed with another key of the same id")]
    Damaged,
}

fn key_id(key: &[u8]) -> String {
    hex_prefix(&Sha256::digest(key)[..4])
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

impl SecretCipher {
    /// Reads a comma-separated list of base64 keys.
    pub fn parse(text: &str) -> Result<Self, ParseKeyError> {
        let keys = text
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .enumerate()
            .map(|(index, part)| {
                let position = index + 1;
                let bytes = BASE64
                    .decode(part)
                    .map_err(|_| ParseKeyError::NotBase64(position))?;
                if bytes.len() != KEY_BYTES {
                    return Err(ParseKeyError::WrongLength {
                        position,
                        bytes: bytes.len(),
                    });
                }
                let cipher = XChaCha20Poly1305::new_from_slice(&bytes).map_err(|_| {
                    ParseKeyError::WrongLength {
                        position,
                        bytes: bytes.len(),
                    }
                })?;
                Ok((key_id(&bytes), cipher))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            Err(ParseKeyError::Empty)
        } else {
            Ok(Self { keys })
        }
    }

    /// Seals `plain` with the first key.
    pub fn seal(&self, plain: &str) -> String {
        let (id, cipher) = &self.keys[0];
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        // Encryption with a valid key and nonce cannot fail for inputs of this size.
        let sealed = cipher
            .encrypt(&XNonce::from(nonce), plain.as_bytes())
            .unwrap_or_default();
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&sealed);
        format!("{SEALED_PREFIX}{id}:{}", BASE64.encode(blob))
    }

    /// Whether a stored value must be sealed again to be under the first key.
    pub fn needs_reseal(&self, stored: &str) -> bool {
        stored
            .strip_prefix(SEALED_PREFIX)
            .is_none_or(|rest| !rest.starts_with(&format!("{}:", self.keys[0].0)))
    }
}

/// Opens a stored value: plain text passes through; a sealed one needs its key.
pub fn open(cipher: Option<&SecretCipher>, stored: &str) -> Result<String, OpenError> {
    let Some(rest) = stored.strip_prefix(SEALED_PREFIX) else {
        return Ok(stored.to_owned());
    };
    let cipher = cipher.ok_or(OpenError::NoKeys)?;
    let (id, encoded) = rest.split_once(':').ok_or(OpenError::Damaged)?;
    let (_, key) = cipher
        .keys
        .iter()
        .find(|(key_id, _)| key_id == id)
        .ok_or_else(|| OpenError::UnknownKey(id.to_owned()))?;
    let blob = BASE64.decode(encoded).map_err(|_| OpenError::Damaged)?;
    if blob.len() < NONCE_BYTES {
        return Err(OpenError::Damaged);
    }
    let (nonce, sealed) = blob.split_at(NONCE_BYTES);
    let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| OpenError::Damaged)?;
    let plain = key
        .decrypt(&XNonce::from(nonce), sealed)
        .map_err(|_| OpenError::Damaged)?;
    String::from_utf8(plain).map_err(|_| OpenError::Damaged)
}

/// Seals with the cipher when there is one; otherwise stores plain text.
pub fn seal(cipher: Option<&SecretCipher>, plain: &str) -> String {
    match cipher {
        Some(cipher) => cipher.seal(plain),
        None => plain.to_owned(),
    }
}

impl fmt::Debug for SecretCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("SecretCipher")
            .field("key_ids", &ids)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "q6Hx7nVYJ1c0mJpM4Jg5bJ8Gz0s3kQ2fWc9tY1r8aXE=";
    const KEY_B: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn seals_and_opens() {
        let cipher = SecretCipher::parse(KEY_A).unwrap();
        let sealed = cipher.seal("whsec_plain");
        assert!(sealed.starts_with("enc1:"));
        assert!(!sealed.contains("whsec_plain"));
        assert_eq!(open(Some(&cipher), &sealed).unwrap(), "whsec_plain");
        assert_ne!(
            cipher.seal("whsec_plain"),
            sealed,
            "every seal draws a fresh nonce"
        );
        assert_eq!(open(Some(&cipher), "whsec_plain").unwrap(), "whsec_plain");
        assert_eq!(open(None, &sealed), Err(OpenError::NoKeys));
    }

    #[test]
    fn keys_rotate() {
        let old = SecretCipher::parse(KEY_A).unwrap();
        let sealed = old.seal("whsec_x");
        let rotated = SecretCipher::parse(&format!("{KEY_B},{KEY_A}")).unwrap();
        assert_eq!(open(Some(&rotated), &sealed).unwrap(), "whsec_x");
        assert!(rotated.needs_reseal(&sealed));
        assert!(!rotated.needs_reseal(&rotated.seal("whsec_x")));
        assert!(rotated.needs_reseal("whsec_plain"));
        let only_new = SecretCipher::parse(KEY_B).unwrap();
        assert!(matches!(
            open(Some(&only_new), &sealed),
            Err(OpenError::UnknownKey(_))
        ));
    }

    #[test]
    fn damage_and_bad_keys_are_reported() {
        let cipher = SecretCipher::parse(KEY_A).unwrap();
        let mut sealed = cipher.seal("whsec_x");
        sealed.replace_range(sealed.len() - 4.., "AAAA");
        assert_eq!(open(Some(&cipher), &sealed), Err(OpenError::Damaged));
        assert_eq!(
            SecretCipher::parse("!!").unwrap_err(),
            ParseKeyError::NotBase64(1)
        );
        assert!(matches!(
            SecretCipher::parse("AAAA"),
            Err(ParseKeyError::WrongLength { bytes: 3, .. })
        ));
        assert_eq!(
            SecretCipher::parse(" , ").unwrap_err(),
            ParseKeyError::Empty
        );
        assert!(!format!("{cipher:?}").contains(KEY_A));
    }
}
