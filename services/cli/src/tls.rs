//! TLS for the gRPC listener and for the client commands, from PEM files named in the
//! configuration (`[tls]` for the service, `client.tls_*` for clients).

use std::path::Path;

use anyhow::Context;
// The client's side only: the listener's TLS is made by `rag-grpc` from the PEM read here.
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use crate::config::{ClientSection, TlsSection};

fn read(what: &str, path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("{what} {}", path.display()))
}

fn is_set(path: &Path) -> bool {
    !path.as_os_str().is_empty()
}

/// The PEM of a certificate and of its key, from the two settings named `cert` and `key`
/// (`section.name`): both set, or neither (`None`).
fn identity(
    (cert, cert_file): (&str, &Path),
    (key, key_file): (&str, &Path),
) -> anyhow::Result<Option<(Vec<u8>, Vec<u8>)>> {
    match (is_set(cert_file), is_set(key_file)) {
        (false, false) => Ok(None),
        (true, true) => Ok(Some((read(cert, cert_file)?, read(key, key_file)?))),
        _ => anyhow::bail!("{cert} and {key} go together"),
    }
}

/// The PEM of a CA certificate from the setting `what`, when it is set.
fn certificate(what: &str, path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    Ok(if is_set(path) {
        Some(read(what, path)?)
    } else {
        None
    })
}

/// The listener's TLS, or `None` when no certificate is configured. A client CA makes client
/// certificates mandatory (mTLS).
pub fn server(tls: &TlsSection) -> anyhow::Result<Option<rag_grpc::server::Tls>> {
    let Some((cert, key)) = identity(
        ("tls.cert_file", &tls.cert_file),
        ("tls.key_file", &tls.key_file),
    )?
    else {
        anyhow::ensure!(
            !is_set(&tls.client_ca_file),
            "tls.client_ca_file needs tls.cert_file and tls.key_file (the service's own certificate)"
        );
        return Ok(None);
    };
    Ok(Some(rag_grpc::server::Tls {
        cert,
        key,
        client_ca: certificate("tls.client_ca_file", &tls.client_ca_file)?,
    }))
}

/// The HTTP door's TLS: the gRPC listener's certificate and key, and its client CA (client
/// certificates required) when one is set; `None` when no certificate is configured. The two
/// doors are one service: neither is served in clear while the other is not.
pub fn http_server(
    tls: &TlsSection,
) -> anyhow::Result<Option<std::sync::Arc<tokio_rustls::rustls::ServerConfig>>> {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    if !is_set(&tls.cert_file) || !is_set(&tls.key_file) {
        return Ok(None);
    }
    let certs = CertificateDer::pem_file_iter(&tls.cert_file)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("tls.cert_file {}", tls.cert_file.display()))?;
    let key = PrivateKeyDer::from_pem_file(&tls.key_file)
        .with_context(|| format!("tls.key_file {}", tls.key_file.display()))?;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = if is_set(&tls.client_ca_file) {
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_file_iter(&tls.client_ca_file)
            .with_context(|| format!("tls.client_ca_file {}", tls.client_ca_file.display()))?
        {
            roots.add(ca.with_context(|| {
                format!("tls.client_ca_file {}", tls.client_ca_file.display())
            })?)?;
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            std::sync::Arc::new(roots),
            provider,
        )
        .build()?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .context("tls.cert_file and tls.key_file")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(std::sync::Arc::new(config)))
}

/// TLS for a client of `addr`: `None` for `http://`; for `https://`, the configured CA (else the
/// system's trust store) and, when configured, the client's own certificate.
pub fn client(client: &ClientSection, addr: &str) -> anyhow::Result<Option<ClientTlsConfig>> {
    if !addr.starts_with("https://") {
        return Ok(None);
    }
    let mut config = match certificate("client.tls_ca_file", &client.tls_ca_file)? {
        Some(ca) => ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca)),
        None => ClientTlsConfig::new().with_native_roots(),
    };
    if let Some((cert, key)) = identity(
        ("client.tls_cert_file", &client.tls_cert_file),
        ("client.tls_key_file", &client.tls_key_file),
    )? {
        config = config.identity(Identity::from_pem(cert, key));
    }
    Ok(Some(config))
}
