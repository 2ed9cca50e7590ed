//! TLS to PostgreSQL, as libpq's `sslmode` and `sslrootcert` ask for it, with rustls.
//!
//! tokio-postgres reads `sslmode` as `disable`, `prefer` or `require` and knows no root file,
//! so [`split`] takes both parameters out of the connection string before it is parsed and
//! keeps what they mean here:
//!
//! | `sslmode` | encrypted | the server's certificate |
//! |---|---|---|
//! | `disable` | never | – |
//! | `prefer` (the default) | when the server offers it | not checked, unless `sslrootcert` is given (then as `verify-ca`) |
//! | `require` | always | as `prefer` |
//! | `verify-ca` | always | signed by a root of `sslrootcert` |
//! | `verify-full` | always | signed by a root of `sslrootcert` and made out to the host connected to |
//!
//! `sslrootcert` is a PEM file of root certificates, or `system` for the system's roots (the
//! default of the verifying modes when it is not given).

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::{Result, StoreError};

/// How much of the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verify {
    /// Encryption only: any certificate whose key signs the handshake.
    Nothing,
    /// The chain to a root, not the name (`verify-ca`).
    Chain,
    /// The chain and the host name (`verify-full`).
    Full,
}

/// The TLS part of a connection string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsSettings {
    /// What tokio-postgres is told: whether TLS is tried, and whether it is required.
    pub(crate) mode: SslMode,
    pub(crate) verify: Verify,
    /// `sslrootcert`: a PEM file; `None` for the system's roots.
    pub(crate) root_file: Option<String>,
}

/// Splits a connection string (URL or `key=value` form) into the string tokio-postgres
/// parses and the TLS settings it cannot.
pub(crate) fn split(url: &str) -> Result<(String, TlsSettings)> {
    let mut mode = None;
    let mut root = None;
    let rest = if let Some((base, query)) = url.split_once('?') {
        let mut kept = Vec::new();
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decoded = percent_encoding::percent_decode_str(value)
                .decode_utf8()
                .map_err(|_| invalid(&format!("`{key}` is not UTF-8")))?
                .into_owned();
            match key {
                "sslmode" => mode = Some(decoded),
                "sslrootcert" => root = Some(decoded),
                _ => kept.push(pair),
            }
        }
        if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        }
    } else if url.contains("://") {
        url.to_owned()
    } else {
        let mut kept = Vec::new();
        for word in url.split_whitespace() {
            match word.split_once('=') {
                Some(("sslmode", value)) => mode = Some(value.trim_matches('\'').to_owned()),
                Some(("sslrootcert", value)) => root = Some(value.trim_matches('\'').to_owned()),
                _ => kept.push(word),
            }
        }
        kept.join(" ")
    };
    let settings = settings(mode.as_deref().unwrap_or("prefer"), root)?;
    Ok((rest, settings))
}

fn settings(mode: &str, root: Option<String>) -> Result<TlsSettings> {
    let root_file = root.filter(|root| root != "system" && !root.is_empty());
    let (mode, verify) = match mode {
        "disable" => (SslMode::Disable, Verify::Nothing),
        "allow" | "prefer" => (SslMode::Prefer, Verify::Nothing),
        "require" => (SslMode::Require, Verify::Nothing),
        "verify-ca" => (SslMode::Require, Verify::Chain),
        "verify-full" => (SslMode::Require, Verify::Full),
        other => {
            return Err(invalid(&format!(
                "sslmode `{other}` is not disable, prefer, require, verify-ca or verify-full"
            )));
        }
    };
    // As libpq: with a root file given, an encrypting mode checks the chain.
    let verify = if verify == Verify::Nothing && root_file.is_some() && mode != SslMode::Disable {
        Verify::Chain
    } else {
        verify
    };
    Ok(TlsSettings {
        mode,
        verify,
        root_file,
    })
}

fn invalid(what: &str) -> StoreError {
    StoreError::Internal(format!("the PostgreSQL URL is not valid: {what}"))
}

/// The connector every connection of the store uses (tokio-postgres calls it only when the
/// mode asks for TLS). Reads the root file, so a missing or unreadable one fails at start.
pub(crate) fn connector(settings: &TlsSettings) -> Result<MakeRustlsConnect> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let checked = match settings.verify {
        Verify::Nothing => None,
        Verify::Chain | Verify::Full => {
            let roots = Arc::new(roots(settings.root_file.as_deref())?);
            let verifier =
                WebPkiServerVerifier::builder_with_provider(roots, Arc::clone(&provider))
                    .build()
                    .map_err(|error| {
                        StoreError::Internal(format!("cannot verify PostgreSQL's TLS: {error}"))
                    })?;
            Some(verifier)
        }
    };
    let verifier = Verifier {
        checked,
        check_name: settings.verify == Verify::Full,
        algorithms: provider.signature_verification_algorithms,
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| StoreError::Internal(format!("TLS: {error}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

fn roots(file: Option<&str>) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    match file {
        Some(file) => {
            let certificates = CertificateDer::pem_file_iter(file)
                .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
                .map_err(|error| {
                    StoreError::Internal(format!(
                        "cannot read sslrootcert `{file}` (PEM certificates): {error}"
                    ))
                })?;
            let (added, _) = roots.add_parsable_certificates(certificates);
            if added == 0 {
                return Err(StoreError::Internal(format!(
                    "sslrootcert `{file}` holds no usable certificate"
                )));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(StoreError::Internal(
                    "no system root certificate found to verify PostgreSQL's; \
                     give one with sslrootcert=FILE"
                        .into(),
                ));
            }
        }
    }
    Ok(roots)
}

/// Checks the server's certificate as far as the mode asks; the handshake's signatures are
/// always checked against the certificate's key.
#[derive(Debug)]
struct Verifier {
    /// `None`: the certificate itself is not checked.
    checked: Option<Arc<WebPkiServerVerifier>>,
    check_name: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let Some(checked) = &self.checked else {
            return Ok(ServerCertVerified::assertion());
        };
        // The chain is checked before the name: a wrong name means a good chain.
        match checked.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_ok(url: &str) -> (String, TlsSettings) {
        split(url).unwrap()
    }

    #[test]
    fn the_tls_parameters_are_taken_out_of_the_url() {
        let (rest, tls) = split_ok(
            "postgres://u@db:5432/hooks?sslmode=verify-full&application_name=x&sslrootcert=%2Fetc%2Fca.pem",
        );
        assert_eq!(rest, "postgres://u@db:5432/hooks?application_name=x");
        assert_eq!(tls.mode, SslMode::Require);
        assert_eq!(tls.verify, Verify::Full);
        assert_eq!(tls.root_file.as_deref(), Some("/etc/ca.pem"));

        let (rest, tls) = split_ok("postgres://u@db/hooks?sslmode=verify-ca");
        assert_eq!(rest, "postgres://u@db/hooks");
        assert_eq!((tls.mode, tls.verify), (SslMode::Require, Verify::Chain));
        assert_eq!(tls.root_file, None);

        let (rest, tls) = split_ok("host=db dbname=hooks sslmode=require sslrootcert=/ca.pem");
        assert_eq!(rest, "host=db dbname=hooks");
        // A root file makes `require` check the chain, as libpq does.
        assert_eq!((tls.mode, tls.verify), (SslMode::Require, Verify::Chain));
    }

    #[test]
    fn modes_read_as_libpq_reads_them() {
        let mode = |url: &str| {
            let (_, tls) = split_ok(url);
            (tls.mode, tls.verify)
        };
        assert_eq!(mode("postgres://db/x"), (SslMode::Prefer, Verify::Nothing));
        assert_eq!(
            mode("postgres://db/x?sslmode=disable&sslrootcert=/ca.pem"),
            (SslMode::Disable, Verify::Nothing)
        );
        assert_eq!(
            mode("postgres://db/x?sslmode=prefer"),
            (SslMode::Prefer, Verify::Nothing)
        );
        assert_eq!(
            mode("postgres://db/x?sslmode=verify-full&sslrootcert=system"),
            (SslMode::Require, Verify::Full)
        );
        assert!(matches!(
            split("postgres://db/x?sslmode=always"),
            Err(StoreError::Internal(message)) if message.contains("sslmode `always`")
        ));
    }

    #[test]
    fn an_unreadable_root_file_fails_at_start() {
        let (_, tls) =
            split_ok("postgres://db/x?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem");
        assert!(matches!(
            connector(&tls),
            Err(StoreError::Internal(message)) if message.contains("/nonexistent/ca.pem")
        ));
    }
}
