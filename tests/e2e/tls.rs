//! TLS on the gRPC listener, with client certificates required (mTLS): certificates made here,
//! a client with one gets answers, a plaintext client and a client without one do not.

use std::path::Path;
use std::time::{Duration, Instant};

use rag_proto::v1 as pb;
use rag_proto::v1::rag_service_client::RagServiceClient;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::harness::Workspace;

/// A CA, a server certificate for localhost / 127.0.0.1 and a client certificate, as PEM files
/// in `dir`: ca.pem, server.pem, server.key, client.pem, client.key.
fn make_certificates(dir: &Path) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "rag test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issue = |names: Vec<String>, name: &str| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.signed_by(&key, &ca_cert, &ca_key).unwrap();
        std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
    };
    issue(vec!["localhost".into(), "127.0.0.1".into()], "server");
    issue(vec!["qa-bot.internal".into()], "client");
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
}

async fn tls_channel(port: &str, dir: &Path, with_client_cert: bool) -> Result<Channel, String> {
    let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read("ca.pem")))
        .domain_name("localhost");
    if with_client_cert {
        tls = tls.identity(Identity::from_pem(read("client.pem"), read("client.key")));
    }
    Channel::from_shared(format!("https://localhost:{port}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .map_err(|e| format!("{e:?}"))
}

fn search() -> pb::SearchRequest {
    pb::SearchRequest {
        query: "hotel limit per night".into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_service_speaks_tls_and_requires_client_certificates_when_told() {
    let ws = Workspace::new();
    ws.index_samples();
    let certs = ws.dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    make_certificates(&certs);
    ws.append_config(&format!(
        "[tls]\ncert_file = \"{c}/server.pem\"\nkey_file = \"{c}/server.key\"\nclient_ca_file = \"{c}/ca.pem\"",
        c = certs.display()
    ));
    let server = ws.start_serving(&[]);
    let port = server.url.rsplit(':').next().unwrap().to_owned();

    // A client with the CA and its own certificate: answers, once the service has loaded.
    let deadline = Instant::now() + Duration::from_secs(120);
    let hits = loop {
        let attempt = async {
            let channel = tls_channel(&port, &certs, true).await?;
            RagServiceClient::new(channel)
                .search(search())
                .await
                .map_err(|e| format!("{e:?}"))
        };
        match attempt.await {
            Ok(response) => break response.into_inner().chunks,
            Err(e) if Instant::now() < deadline => {
                assert!(!e.contains("InvalidCertificate"), "{e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("no answer over TLS: {e}"),
        }
    };
    assert_eq!(
        hits[0].source_path, "finance/expense-policy.pdf",
        "{hits:?}"
    );

    // Plaintext to the same port: no answer.
    let plain = Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await;
    if let Ok(channel) = plain {
        let refused = RagServiceClient::new(channel).search(search()).await;
        assert!(refused.is_err(), "a plaintext client got an answer");
    }

    // TLS without a client certificate: the handshake or the first call fails.
    match tls_channel(&port, &certs, false).await {
        Err(_) => {}
        Ok(channel) => {
            let refused = RagServiceClient::new(channel).search(search()).await;
            assert!(
                refused.is_err(),
                "a client without a certificate got an answer"
            );
        }
    }

    // The CLI over https with the client settings from its configuration.
    let client_config = ws.dir.path().join("client.toml");
    std::fs::write(
        &client_config,
        format!(
            "[client]\naddr = \"https://localhost:{port}\"\ntls_ca_file = \"{c}/ca.pem\"\n\
             tls_cert_file = \"{c}/client.pem\"\ntls_key_file = \"{c}/client.key\"\n",
            c = certs.display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rag"))
        .arg("--config")
        .arg(&client_config)
        .args(["search", "hotel limit per night"])
        .env_remove("RUST_LOG")
        .env_remove("RAG_API_KEY")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("finance/expense-policy.pdf"));
    server.stop();
}

/// One HTTP/1.1 exchange over TLS to 127.0.0.1:`port` (server name localhost), with the test
/// CA and, when `client_cert`, the client's certificate: the raw response, or why none came.
async fn https(port: &str, dir: &Path, client_cert: bool, request: &str) -> Result<String, String> {
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(dir.join("ca.pem")).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = if client_cert {
        let certs = CertificateDer::pem_file_iter(dir.join("client.pem"))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(dir.join("client.key")).unwrap();
        builder.with_client_auth_cert(certs, key).unwrap()
    } else {
        builder.with_no_client_auth()
    };
    let tcp = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}"))
        .await
        .map_err(|e| e.to_string())?;
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tls.write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match tls.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
            // A server that closes without close_notify: what came is the response.
            Err(_) if !response.is_empty() => break,
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(String::from_utf8_lossy(&response).into_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_http_door_speaks_https_with_the_same_certificates_and_client_check() {
    let ws = Workspace::new();
    ws.index_samples();
    let certs = ws.dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    make_certificates(&certs);
    ws.append_config(&format!(
        "[tls]\ncert_file = \"{c}/server.pem\"\nkey_file = \"{c}/server.key\"\nclient_ca_file = \"{c}/ca.pem\"",
        c = certs.display()
    ));
    let server = ws.start_serving(&["--http-listen", "127.0.0.1:0"]);
    let port = server
        .http
        .as_deref()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_owned();
    let body = r#"{"query":"hotel limit per night"}"#;
    let search = format!(
        "POST /v1/search HTTP/1.1\r\nHost: localhost:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );

    // With the CA and a client certificate: answers, once the service has loaded.
    let deadline = Instant::now() + Duration::from_secs(120);
    let response = loop {
        match https(&port, &certs, true, &search).await {
            Ok(r) if r.starts_with("HTTP/1.1 200") => break r,
            other if Instant::now() < deadline => {
                if let Err(e) = &other {
                    assert!(!e.contains("InvalidCertificate"), "{e}");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => panic!("no answer over HTTPS: {other:?}"),
        }
    };
    assert!(
        response.contains("finance/expense-policy.pdf"),
        "{response}"
    );

    // Plain HTTP to the same port: no HTTP answer, only the end of a TLS conversation.
    let plain = {
        use std::io::{Read, Write};
        let mut conn = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        conn.write_all(search.as_bytes()).unwrap();
        let mut out = Vec::new();
        let _ = conn.read_to_end(&mut out);
        out
    };
    assert!(
        !plain.starts_with(b"HTTP/"),
        "answered in clear: {}",
        String::from_utf8_lossy(&plain)
    );

    // TLS without a client certificate: refused in the handshake or at the first read.
    let refused = https(&port, &certs, false, &search).await;
    assert!(
        refused.as_ref().map_or(true, |r| !r.starts_with("HTTP/")),
        "answered a client without a certificate: {refused:?}"
    );
    server.stop();
}
