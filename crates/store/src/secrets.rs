//! How endpoint secrets are written to and read from storage, the same on every backend: the
//! current secret as one string, the retired ones (rotation grace) as a JSON list, each sealed
//! with `WEBHOOKD_ENCRYPTION_KEY` when one is set (see `webhookd_core::cipher`). Custom headers
//! are a JSON map whose sensitive values (`Authorization`, `Cookie`, … — the names
//! `webhookd_core::validate::is_sensitive_header` picks) are sealed the same way.

use std::collections::BTreeMap;
use std::sync::Arc;

use webhookd_core::cipher::{self, SecretCipher};
use webhookd_core::model::RetiredSecret;
use webhookd_core::signing::Secret;
use webhookd_core::time::{from_unix_ms, to_unix_ms};
use webhookd_core::validate::is_sensitive_header;

use crate::IdempotentResponse;

/// Seals secrets on write and opens them on read. The default stores them in plain.
#[derive(Debug, Clone, Default)]
pub struct SecretCodec(Option<Arc<SecretCipher>>);

/// A retired secret as stored.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredRetiredSecret {
    key: String,
    expires_at: i64,
}

impl SecretCodec {
    /// Secrets sealed with `cipher`'s first key; every key opens.
    pub fn sealed(cipher: SecretCipher) -> Self {
        Self(Some(Arc::new(cipher)))
    }

    /// Whether a stored value is not sealed under the current key (plain, or an older key).
    pub fn needs_reseal(&self, stored: &str) -> bool {
        self.0
            .as_ref()
            .is_some_and(|cipher| cipher.needs_reseal(stored))
    }

    pub(crate) fn seal(&self, secret: &Secret) -> String {
        cipher::seal(self.0.as_deref(), &secret.expose())
    }

    /// Seals a token that must be read again (a poller token).
    pub(crate) fn seal_text(&self, text: &str) -> String {
        cipher::seal(self.0.as_deref(), text)
    }

    /// Opens what [`SecretCodec::seal_text`] sealed.
    pub(crate) fn open_text(&self, stored: &str) -> Result<String, String> {
        cipher::open(self.0.as_deref(), stored).map_err(|error| error.to_string())
    }

    pub(crate) fn open(&self, stored: &str) -> Result<Secret, String> {
        let plain = cipher::open(self.0.as_deref(), stored).map_err(|error| error.to_string())?;
        Secret::parse(&plain).map_err(|error| error.to_string())
    }

    /// The custom headers as stored: a JSON map, sensitive values sealed.
    pub(crate) fn seal_headers(
        &self,
        headers: &BTreeMap<String, String>,
    ) -> Result<String, String> {
        let stored: BTreeMap<&str, String> = headers
            .iter()
            .map(|(name, value)| {
                let value = match &self.0 {
                    Some(cipher) if is_sensitive_header(name) => cipher.seal(value),
                    _ => value.clone(),
                };
                (name.as_str(), value)
            })
            .collect();
        serde_json::to_string(&stored).map_err(|error| error.to_string())
    }

    /// Opens stored custom headers; values stored plain pass through.
    pub(crate) fn open_headers(&self, text: &str) -> Result<BTreeMap<String, String>, String> {
        let stored: BTreeMap<String, String> =
            serde_json::from_str(text).map_err(|error| error.to_string())?;
        stored
            .into_iter()
            .map(|(name, value)| {
                let value = if value.starts_with(cipher::SEALED_PREFIX) {
                    cipher::open(self.0.as_deref(), &value).map_err(|error| error.to_string())?
                } else {
                    value
                };
                Ok((name, value))
            })
            .collect()
    }

    /// Whether an endpoint as stored (its secret, retired secrets and headers columns) holds
    /// anything not sealed with the current key. Always false without a key.
    pub(crate) fn endpoint_needs_reseal(&self, secret: &str, retired: &str, headers: &str) -> bool {
        if self.0.is_none() {
            return false;
        }
        if self.needs_reseal(secret) {
            return true;
        }
        let retired_plain = serde_json::from_str::<Vec<StoredRetiredSecret>>(retired)
            .is_ok_and(|list| list.iter().any(|stored| self.needs_reseal(&stored.key)));
        let headers_plain =
            serde_json::from_str::<BTreeMap<String, String>>(headers).is_ok_and(|map| {
                map.iter()
                    .any(|(name, value)| is_sensitive_header(name) && self.needs_reseal(value))
            });
        retired_plain || headers_plain
    }

    pub(crate) fn seal_retired(&self, secrets: &[RetiredSecret]) -> Result<String, String> {
        let stored: Vec<StoredRetiredSecret> = secrets
            .iter()
            .map(|retired| StoredRetiredSecret {
                key: self.seal(&retired.secret),
                expires_at: to_unix_ms(retired.expires_at),
            })
            .collect();
        serde_json::to_string(&stored).map_err(|error| error.to_string())
    }

    /// A copy of an idempotency record whose stored answer is sealed: answers such as a
    /// rotation's or `/webhooks`' carry a secret.
    pub(crate) fn seal_response(
        &self,
        response: Option<&IdempotentResponse>,
    ) -> Option<IdempotentResponse> {
        let mut response = response.cloned()?;
        if let Some(cipher) = &self.0 {
            response.body = cipher
                .seal(&String::from_utf8_lossy(&response.body))
                .into_bytes();
        }
        Some(response)
    }

    /// The body a stored idempotency answer should have under the current key, when it differs:
    /// sealed with the current key (or plain, without a key). `None` when it is right as is.
    pub(crate) fn reseal_body(&self, body: &[u8]) -> Result<Option<Vec<u8>>, String> {
        let text = String::from_utf8_lossy(body);
        let rewrite = match &self.0 {
            Some(cipher) => cipher.needs_reseal(&text),
            None => text.starts_with(cipher::SEALED_PREFIX),
        };
        if !rewrite {
            return Ok(None);
        }
        let plain = if text.starts_with(cipher::SEALED_PREFIX) {
            cipher::open(self.0.as_deref(), &text).map_err(|error| error.to_string())?
        } else {
            text.into_owned()
        };
        Ok(Some(cipher::seal(self.0.as_deref(), &plain).into_bytes()))
    }

    /// Opens the answer of a stored idempotency record (plain ones pass through).
    pub(crate) fn open_response(
        &self,
        mut response: IdempotentResponse,
    ) -> Result<IdempotentResponse, String> {
        if let Ok(text) = std::str::from_utf8(&response.body)
            && text.starts_with("enc1:")
        {
            response.body = cipher::open(self.0.as_deref(), text)
                .map_err(|error| error.to_string())?
                .into_bytes();
        }
        Ok(response)
    }

    pub(crate) fn open_retired(&self, text: &str) -> Result<Vec<RetiredSecret>, String> {
        let stored: Vec<StoredRetiredSecret> =
            serde_json::from_str(text).map_err(|error| error.to_string())?;
        stored
            .into_iter()
            .map(|stored| {
                Ok(RetiredSecret {
                    secret: self.open(&stored.key)?,
                    expires_at: from_unix_ms(stored.expires_at),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_sealed_round_trips() {
        let secret = Secret::generate();
        let retired = vec![RetiredSecret {
            secret: Secret::generate(),
            expires_at: webhookd_core::time::now(),
        }];
        let plain = SecretCodec::default();
        assert_eq!(plain.seal(&secret), secret.expose());
        let sealed = SecretCodec::sealed(
            SecretCipher::parse("q6Hx7nVYJ1c0mJpM4Jg5bJ8Gz0s3kQ2fWc9tY1r8aXE=").unwrap(),
        );
        let stored = sealed.seal(&secret);
        assert!(!stored.contains(&secret.expose()));
        assert_eq!(sealed.open(&stored).unwrap(), secret);
        // Secrets stored before encryption was turned on still open, and need resealing.
        assert_eq!(sealed.open(&secret.expose()).unwrap(), secret);
        assert!(sealed.needs_reseal(&secret.expose()));
        let list = sealed.seal_retired(&retired).unwrap();
        assert_eq!(sealed.open_retired(&list).unwrap(), retired);
        assert!(
            plain.open(&stored).is_err(),
            "a sealed secret needs the key"
        );
    }

    #[test]
    fn sensitive_headers_are_sealed() {
        let headers = BTreeMap::from([
            (
                "authorization".to_owned(),
                "Bearer hunter2-credential".to_owned(),
            ),
            ("x-tenant".to_owned(), "acme".to_owned()),
        ]);
        let sealed = SecretCodec::sealed(
            SecretCipher::parse("q6Hx7nVYJ1c0mJpM4Jg5bJ8Gz0s3kQ2fWc9tY1r8aXE=").unwrap(),
        );
        let stored = sealed.seal_headers(&headers).unwrap();
        assert!(!stored.contains("hunter2-credential"), "{stored}");
        assert!(
            stored.contains("acme"),
            "non-sensitive values stay readable"
        );
        assert_eq!(sealed.open_headers(&stored).unwrap(), headers);
        assert!(!sealed.endpoint_needs_reseal(&sealed.seal(&Secret::generate()), "[]", &stored));
        let plain = SecretCodec::default().seal_headers(&headers).unwrap();
        assert!(plain.contains("hunter2-credential"));
        assert!(sealed.endpoint_needs_reseal(&sealed.seal(&Secret::generate()), "[]", &plain));
        assert_eq!(sealed.open_headers(&plain).unwrap(), headers);
    }
}
