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
