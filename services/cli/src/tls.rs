//! TLS for the gRPC listener and for the client commands, from PEM files named in the
//! configuration (`[tls]` for the service, `client.tls_*` for clients).

use std::path::Path;

use anyhow::Context;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

use crate::config::{ClientSection, TlsSection};

fn read(what: &str, path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("{what} {}", path.display()))
}

fn is_set(path: &Path) -> bool {
    !path.as_os_str().is_empty()
}

/// A certificate and its key, from the two settings named `cert` and `key` (`section.name`):
/// both set, or neither (`None`).
fn identity(
    (cert, cert_file): (&str, &Path),
    (key, key_file): (&str, &Path),
) -> anyhow::Result<Option<Identity>> {
    match (is_set(cert_file), is_set(key_file)) {
        (false, false) => Ok(None),
        (true, true) => Ok(Some(Identity::from_pem(
            read(cert, cert_file)?,
            read(key, key_file)?,
        ))),
        _ => anyhow::bail!("{cert} and {key} go together"),
    }
}

/// A CA certificate from the setting `what`, when it is set.
fn certificate(what: &str, path: &Path) -> anyhow::Result<Option<Certificate>> {
    Ok(if is_set(path) {
        Some(Certificate::from_pem(read(what, path)?))
    } else {
        None
    })
}

/// The listener's TLS, or `None` when no certificate is configured. A client CA makes client
/// certificates mandatory (mTLS).
pub fn server(tls: &TlsSection) -> anyhow::Result<Option<ServerTlsConfig>> {
    let Some(identity) = identity(
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
    let mut config = ServerTlsConfig::new().identity(identity);
    if let Some(ca) = certificate("tls.client_ca_file", &tls.client_ca_file)? {
        config = config.client_ca_root(ca);
    }
    Ok(Some(config))
}

/// TLS for a client of `addr`: `None` for `http://`; for `https://`, the configured CA (else the
/// system's trust store) and, when configured, the client's own certificate.
pub fn client(client: &ClientSection, addr: &str) -> anyhow::Result<Option<ClientTlsConfig>> {
    if !addr.starts_with("https://") {
        return Ok(None);
    }
    let mut config = match certificate("client.tls_ca_file", &client.tls_ca_file)? {
        Some(ca) => ClientTlsConfig::new().ca_certificate(ca),
        None => ClientTlsConfig::new().with_native_roots(),
    };
    if let Some(identity) = identity(
        ("client.tls_cert_file", &client.tls_cert_file),
        ("client.tls_key_file", &client.tls_key_file),
    )? {
        config = config.identity(identity);
    }
    Ok(Some(config))
}
