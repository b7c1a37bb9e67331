//! Starts the real `rag` binary: ingest through the CLI, serve on a loopback port, talk gRPC.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rag_proto::v1::rag_service_client::RagServiceClient;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// A temporary workspace: a config file pointing at the repo's models, a data dir, a docs dir.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Self {
        Self::with_embedding(&format!(
            "model_dir = \"{}/embed/all-MiniLM-L6-v2\"",
            repo().join("models").display()
        ))
    }

    /// The multilingual configuration of `examples/multilingual.toml`.
    pub fn multilingual() -> Self {
        let models = repo().join("models");
        assert!(
            models
                .join("embed/multilingual-e5-small/model.onnx")
                .is_file(),
            "the multilingual model is missing: run scripts/fetch-models.sh multilingual"
        );
        let ws = Self::with_embedding(&format!(
            "name = \"multilingual-e5-small\"\nmodel_dir = \"{}/embed/multilingual-e5-small\"\n\
             max_length = 512\nquery_prefix = \"query: \"\npassage_prefix = \"passage: \"\n\
             multilingual = true",
            models.display()
        ));
        ws.append_config("score_threshold = 0.76");
        ws.append_config("support.min_cross_similarity = 0.8");
        ws
    }

    fn with_embedding(embedding: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let models = repo().join("models");
        assert!(
            models.join("llm").is_dir(),
            "models are missing: run scripts/fetch-models.sh first"
        );
        let config = format!(
            r#"data_dir = "{data}"
[embedding]
{embedding}
onnxruntime = "{models}/onnxruntime/libonnxruntime.so"
threads = 1
[llm]
model_file = "{models}/llm/SmolLM2-135M-Instruct.Q4_1.gguf"
threads = 1
[auth]
enabled = false
[query]
max_tokens = 48
"#,
            data = dir.path().join("data").display(),
            models = models.display(),
            embedding = embedding,
        );
        std::fs::write(dir.path().join("rag.toml"), config).unwrap();
        let ws = Self { dir };
        // The whole suite over a Qdrant server: scripts/test.sh sets this when it has one.
        if let Ok(url) = std::env::var("RAG_E2E_QDRANT_URL") {
            let name = ws.dir.path().file_name().unwrap().to_string_lossy();
            let collection: String = name
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            ws.use_qdrant(&url, &format!("e2e_{collection}"), 10);
        }
        ws
    }

    /// Answers with the default chat model (Qwen2.5-Coder 1.5B) instead of the suite's tiny one:
    /// for tests whose point is what a real model does with a prompt (follow-up rewrites).
    pub fn with_default_chat_model(&self) {
        let config = std::fs::read_to_string(self.config())
            .unwrap()
            .replace(
                "SmolLM2-135M-Instruct.Q4_1.gguf",
                "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            )
            .replace("threads = 1\n[auth]", "threads = 2\n[auth]");
        std::fs::write(self.config(), config).unwrap();
    }

    /// Adds `line` to the config file's `[llm]` table.
    pub fn llm_option(&self, line: &str) {
        let config = std::fs::read_to_string(self.config()).unwrap().replacen(
            "[llm]\n",
            &format!("[llm]\n{line}\n"),
            1,
        );
        std::fs::write(self.config(), config).unwrap();
    }

    /// Appends `line` to the config file: a `[query]` option while that is the file's last table,
    /// or a new table.
    pub fn append_config(&self, line: &str) {
        let mut config = std::fs::read_to_string(self.config()).unwrap();
        config.push_str(line);
        config.push('\n');
        std::fs::write(self.config(), config).unwrap();
    }

    /// Turns API keys on, with these `(id, key, role)` entries in a keys file of their own.
    pub fn with_keys(&self, keys: &[(&str, &str, &str)]) {
        let keys: Vec<(&str, &str, &str, &str)> = keys
            .iter()
            .map(|&(id, key, role)| (id, key, role, ""))
            .collect();
        self.with_key_entries(&keys);
    }

    /// Turns API keys on, with `(id, key, role, more)` entries, `more` being further TOML lines
    /// of the entry (`tenant = "acme"`, `groups = ["hr"]`).
    pub fn with_key_entries(&self, keys: &[(&str, &str, &str, &str)]) {
        let file: String = keys
            .iter()
            .map(|(id, key, role, more)| {
                use sha2::Digest;
                let digest = hex::encode(sha2::Sha256::digest(key.as_bytes()));
                format!(
                    "[[keys]]\nid = \"{id}\"\nsha256 = \"{digest}\"\nrole = \"{role}\"\n{more}\n"
                )
            })
            .collect();
        let path = self.dir.path().join("keys.toml");
        std::fs::write(&path, file).unwrap();
        let config = std::fs::read_to_string(self.config()).unwrap().replace(
            "[auth]\nenabled = false\n",
            &format!("[auth]\nkeys_file = \"{}\"\n", path.display()),
        );
        std::fs::write(self.config(), config).unwrap();
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("rag.toml")
    }

    pub fn docs(&self) -> PathBuf {
        self.dir.path().join("docs")
    }

    /// Copies the shipped sample folder into `docs/`.
    pub fn copy_samples(&self) {
        copy_dir(&repo().join("examples/docs"), &self.docs());
    }

    /// Copies the sample folder into `docs/` and indexes it with `rag ingest`, which must
    /// succeed.
    pub fn index_samples(&self) {
        self.copy_samples();
        let (code, summary) = self.ingest();
        assert_eq!(code, 0, "{summary}");
    }

    pub fn rag(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_rag"))
            .arg("--config")
            .arg(self.config())
            .args(args)
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    }

    /// `rag ingest --json`: exit code and the parsed summary.
    pub fn ingest(&self) -> (i32, serde_json::Value) {
        let out = self.rag(&["ingest", "--json", self.docs().to_str().unwrap()]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let summary = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!(
                "ingest did not print a JSON summary ({e}); stdout: {stdout}\nstderr: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().unwrap_or(-1), summary)
    }

    pub async fn serve(&self) -> Server {
        let server = self.start_serving(&[]);
        server.wait_serving().await;
        server
    }

    /// `rag serve` with the HTTP API on a free loopback port, loaded.
    pub async fn serve_http(&self) -> Server {
        let server = self.start_serving(&["--http-listen", "127.0.0.1:0"]);
        server.wait_serving().await;
        server
    }

    /// `rag serve` with the HTTP API and the admin listener (metrics) on free loopback ports,
    /// loaded.
    pub async fn serve_http_and_admin(&self) -> Server {
        let server = self.start_serving(&[
            "--http-listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ]);
        server.wait_serving().await;
        server
    }

    /// `rag serve` with `extra` arguments, without waiting for it to load.
    pub fn start_serving(&self, extra: &[&str]) -> Server {
        self.spawn_serve(extra, Stdio::inherit(), &[])
    }

    /// `rag serve` logging JSON lines to `log` (the audit target included), loaded.
    pub async fn serve_logged(&self, log: &Path) -> Server {
        let file = std::fs::File::create(log).unwrap();
        let server = self.spawn_serve(
            &["--log-json"],
            Stdio::from(file),
            &[("RUST_LOG", "warn,audit=info")],
        );
        server.wait_serving().await;
        server
    }

    /// `rag serve` with `extra` arguments, logging in the text format (info and the audit
    /// target, without colours) to `log`, loaded.
    pub async fn serve_text_logged(&self, log: &Path, extra: &[&str]) -> Server {
        let file = std::fs::File::create(log).unwrap();
        let env = [("RUST_LOG", "info"), ("NO_COLOR", "1")];
        let server = self.spawn_serve(extra, Stdio::from(file), &env);
        server.wait_serving().await;
        server
    }

    fn spawn_serve(&self, extra: &[&str], stderr: Stdio, env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rag"))
            .arg("--config")
            .arg(self.config())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut admin = None;
        let mut http = None;
        let addr = loop {
            let mut line = String::new();
            stdout.read_line(&mut line).unwrap();
            let line = line.trim();
            if let Some(a) = line.strip_prefix("rag: admin listening on ") {
                admin = Some(a.to_owned());
            } else if let Some(a) = line.strip_prefix("rag: http listening on ") {
                http = Some(format!("http://{a}"));
            } else if let Some(a) = line.strip_prefix("rag: listening on ") {
                break a.to_owned();
            } else {
                panic!("unexpected line from rag serve: {line:?}");
            }
        };
        let channel = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect_lazy();
        Server {
            child,
            channel,
            url: format!("http://{addr}"),
            admin,
            http,
        }
    }
}

/// A gRPC request carrying `authorization: Bearer <key>` when `key` is given.
pub fn with_key<T>(message: T, key: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(key) = key {
        request.metadata_mut().insert(
            "authorization",
            tonic::metadata::MetadataValue::try_from(format!("Bearer {key}")).unwrap(),
        );
    }
    request
}

pub struct Server {
    pub child: Child,
    pub channel: Channel,
    /// `http://host:port` of the gRPC listener, for `rag --addr`.
    pub url: String,
    /// The admin HTTP listener's address, when started with one.
    pub admin: Option<String>,
    /// `http://host:port` of the HTTP API, when started with one (`--http-listen`).
    pub http: Option<String>,
}

impl Server {
    pub fn client(&self) -> RagServiceClient<Channel> {
        RagServiceClient::new(self.channel.clone())
    }

    /// `GET path` on the admin listener: status code and body.
    pub fn admin_get(&self, path: &str) -> (u16, String) {
        http_get(
            self.admin
                .as_deref()
                .expect("started with an admin listener"),
            path,
        )
    }

    /// A counter without labels from the admin listener's /metrics (0 before its first count).
    pub fn counter(&self, name: &str) -> u64 {
        let (status, metrics) = self.admin_get("/metrics");
        assert_eq!(status, 200);
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .map_or(0, |v| v.trim().parse().unwrap())
    }

    /// Polls the standard health service until the rag service reports SERVING.
    pub async fn wait_serving(&self) {
        let mut health = HealthClient::new(self.channel.clone());
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let status = health
                .check(tonic_health::pb::HealthCheckRequest {
                    service: "rag.v1.RagService".into(),
                })
                .await
                .map(|r| r.into_inner().status)
                .map_err(|e| e.code());
            if status == Ok(ServingStatus::Serving as i32) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "service not SERVING after 120 s: {status:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM, then the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "server ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.1 GET: status code and body.
fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {head:?}"));
    (status, body.to_owned())
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A Qdrant server process on free loopback ports with its own storage directory, for the
/// server backend's tests. The binary comes from `QDRANT_BIN` or `qdrant` on `PATH`; tests that
/// need one are `#[ignore]`d and run by `scripts/test.sh` when there is one.
pub struct Qdrant {
    bin: PathBuf,
    dir: tempfile::TempDir,
    pub http_port: u16,
    pub grpc_port: u16,
    /// Cluster mode: this peer's p2p port and the first peer's (none for the first itself).
    p2p: Option<(u16, Option<u16>)>,
    child: Option<Child>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Qdrant {
    /// Starts a Qdrant server, or panics saying how to provide one (the test was asked for).
    pub fn start() -> Self {
        Self::peer(None)
    }

    /// Starts `n` peers of one cluster on loopback: the first founds it, the others bootstrap
    /// from it. Returns once every peer sees all `n`.
    pub fn cluster(n: usize) -> Vec<Self> {
        let first = Self::peer(Some(None));
        let first_p2p = first.p2p.unwrap().0;
        let mut peers = vec![first];
        for _ in 1..n {
            peers.push(Self::peer(Some(Some(first_p2p))));
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        for peer in &peers {
            loop {
                let (_, body) = peer.http_get("/cluster");
                let cluster: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                let seen = cluster["result"]["peers"]
                    .as_object()
                    .map_or(0, |p| p.len());
                if seen == n {
                    break;
                }
                assert!(Instant::now() < deadline, "cluster not formed: {body}");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        peers
    }

    fn peer(p2p: Option<Option<u16>>) -> Self {
        let bin = std::env::var_os("QDRANT_BIN")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("PATH").and_then(|paths| {
                    std::env::split_paths(&paths)
                        .map(|p| p.join("qdrant"))
                        .find(|p| p.is_file())
                })
            })
            .expect("no Qdrant binary: set QDRANT_BIN or put `qdrant` on PATH");
        let mut qdrant = Self {
            bin,
            dir: tempfile::tempdir().unwrap(),
            http_port: free_port(),
            grpc_port: free_port(),
            p2p: p2p.map(|first| (free_port(), first)),
            child: None,
        };
        qdrant.restart();
        qdrant
    }

    /// The gRPC address the `qdrant` store backend takes.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc_port)
    }

    /// Starts the process (again) on the same ports and storage, and waits for its gRPC port.
    pub fn restart(&mut self) {
        let dir = self.dir.path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("qdrant.log"))
            .unwrap();
        let mut command = Command::new(&self.bin);
        if let Some((port, first)) = self.p2p {
            command
                .env("QDRANT__CLUSTER__ENABLED", "true")
                .env("QDRANT__CLUSTER__P2P__PORT", port.to_string())
                .args(["--uri", &format!("http://127.0.0.1:{port}")]);
            if let Some(first) = first {
                command.args(["--bootstrap", &format!("http://127.0.0.1:{first}")]);
            }
        }
        let child = command
            .current_dir(dir)
            .env("QDRANT__SERVICE__HOST", "127.0.0.1")
            .env("QDRANT__SERVICE__HTTP_PORT", self.http_port.to_string())
            .env("QDRANT__SERVICE__GRPC_PORT", self.grpc_port.to_string())
            .env("QDRANT__STORAGE__STORAGE_PATH", dir.join("storage"))
            .env("QDRANT__STORAGE__SNAPSHOTS_PATH", dir.join("snapshots"))
            .env("QDRANT__TELEMETRY_DISABLED", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", self.grpc_port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "Qdrant did not open its gRPC port: {}",
                std::fs::read_to_string(dir.join("qdrant.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `GET path` on the server's HTTP API: status code and body.
    pub fn http_get(&self, path: &str) -> (u16, String) {
        http_get(&format!("127.0.0.1:{}", self.http_port), path)
    }

    /// SIGKILL: no shutdown of its own.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Qdrant {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Workspace {
    /// Stores chunks in `collection` on the Qdrant server at `url` instead of the embedded
    /// store, with requests that give up after `timeout_secs`.
    pub fn use_qdrant(&self, url: &str, collection: &str, timeout_secs: u64) {
        self.use_qdrant_with(url, collection, timeout_secs, "");
    }

    /// As [`Workspace::use_qdrant`], with more `[store]` lines (a cluster layout).
    pub fn use_qdrant_with(&self, url: &str, collection: &str, timeout_secs: u64, more: &str) {
        // Before the first table, so that `append_config` still appends to `[query]`.
        let config = std::fs::read_to_string(self.config()).unwrap().replacen(
            "[embedding]",
            &format!(
                "[store]\nbackend = \"qdrant\"\nurl = \"{url}\"\ncollection = \"{collection}\"\n\
                 timeout_secs = {timeout_secs}\n{more}\n[embedding]"
            ),
            1,
        );
        std::fs::write(self.config(), config).unwrap();
    }
}
