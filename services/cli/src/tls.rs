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

/// The listener's TLS, or `None` when no certificate is configured. A client CA makes client
/// certificates mandatory (mTLS).
pub fn server(tls: &TlsSection) -> anyhow::Result<Option<ServerTlsConfig>> {
    match (is_set(&tls.cert_file), is_set(&tls.key_file)) {
        (false, false) => {
            anyhow::ensure!(
                !is_set(&tls.client_ca_file),
                "tls.client_ca_file needs tls.cert_file and tls.key_file (the service's own certificate)"
            );
            return Ok(None);
        }
        (true, true) => {}
        _ => anyhow::bail!("tls.cert_file and tls.key_file go together"),
    }
    let identity = Identity::from_pem(
        read("tls.cert_file", &tls.cert_file)?,
        read("tls.key_file", &tls.key_file)?,
    );
    let mut config = ServerTlsConfig::new().identity(identity);
    if is_set(&tls.client_ca_file) {
        config = config.client_ca_root(Certificate::from_pem(read(
            "tls.client_ca_file",
            &tls.client_ca_file,
        )?));
    }
    Ok(Some(config))
}

/// TLS for a client of `addr`: `None` for `http://`; for `https://`, the configured CA (else the
/// system's trust store) and, when configured, the client's own certificate.
pub fn client(client: &ClientSection, addr: &str) -> anyhow::Result<Option<ClientTlsConfig>> {
    if !addr.starts_with("https://") {
        return Ok(None);
    }
    let mut config = ClientTlsConfig::new();
    config = if is_set(&client.tls_ca_file) {
        config.ca_certificate(Certificate::from_pem(read(
            "client.tls_ca_file",
            &client.tls_ca_file,
        )?))
    } else {
        config.with_native_roots()
    };
    match (is_set(&client.tls_cert_file), is_set(&client.tls_key_file)) {
        (false, false) => {}
        (true, true) => {
            config = config.identity(Identity::from_pem(
                read("client.tls_cert_file", &client.tls_cert_file)?,
                read("client.tls_key_file", &client.tls_key_file)?,
            ));
        }
        _ => anyhow::bail!("client.tls_cert_file and client.tls_key_file go together"),
    }
    Ok(Some(config))
}
