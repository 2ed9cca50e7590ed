//! The API listener's TLS configuration (`WEBHOOKD_TLS_CERT` / `WEBHOOKD_TLS_KEY`), with
//! rustls: TLS 1.2 and 1.3, HTTP/2 and HTTP/1.1 by ALPN. `serve` handshakes each connection
//! in its own task, within a deadline.

use std::sync::Arc;

use anyhow::Context;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::TlsFiles;

/// Reads the certificate chain and key; a clear error names the file that is wrong.
pub fn acceptor(files: &TlsFiles) -> anyhow::Result<TlsAcceptor> {
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
        .map_err(|error| anyhow::anyhow!("tls_cert {}: {error}", files.cert.display()))?;
    if chain.is_empty() {
        anyhow::bail!(
            "tls_cert {}: no certificate in the file",
            files.cert.display()
        );
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|error| anyhow::anyhow!("tls_key {}: {error}", files.key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("tls_cert and tls_key do not make a usable certificate")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
