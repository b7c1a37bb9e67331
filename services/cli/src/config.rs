//! Layered configuration: built-in defaults, then a TOML file, then `RAG_*` environment
//! variables (`__` separates sections: `RAG_LLM__MODEL_FILE`), then command-line flags.

use std::path::{Path, PathBuf};

use anyhow::Context;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use rag_auth::AuthConfig;
use rag_embed::{EmbedConfig, RerankConfig};
use rag_engine::QueryConfig;
use rag_ingest::IngestConfig;
use rag_llm::LlmConfig;
use rag_store::StoreConfig;
use serde::{Deserialize, Serialize};

/// The file read when `--config` is not given, if it exists.
pub const DEFAULT_FILE: &str = "rag.toml";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the embedded store keeps its data.
    pub data_dir: PathBuf,
    pub store: StoreSection,
    pub embedding: EmbedConfig,
    /// Optional cross-encoder reranking of the fused candidates.
    pub rerank: RerankConfig,
    pub llm: LlmConfig,
    pub ingest: IngestConfig,
    pub query: QueryConfig,
    pub client: ClientSection,
    /// API keys and roles (on unless switched off for local use).
    pub auth: AuthConfig,
    /// TLS for the gRPC listener (off unless a certificate is given).
    pub tls: TlsSection,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: "data".into(),
            store: StoreSection::default(),
            embedding: EmbedConfig::default(),
            rerank: RerankConfig::default(),
            llm: LlmConfig::default(),
            ingest: IngestConfig::default(),
            query: QueryConfig::default(),
            client: ClientSection::default(),
            auth: AuthConfig::default(),
            tls: TlsSection::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// Qdrant's engine in-process, data in `data_dir`.
    Embedded,
    /// A Qdrant server or cluster at `store.url`.
    Qdrant,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSection {
    pub backend: Backend,
    /// gRPC address of the Qdrant server (backend = "qdrant").
    pub url: String,
    pub collection: String,
    pub api_key: Option<String>,
    /// How long one request to the Qdrant server may take; past it the call fails as
    /// UNAVAILABLE instead of hanging on a stalled server. Migrations of a large collection
    /// (payload fills) may need more.
    pub timeout_secs: u64,
    /// Qdrant cluster: shards of a new collection (none: one per peer), copies of each shard on
    /// distinct peers (2 survives the loss of a peer), and copies that must confirm a write.
    /// Applied when the collection is created; an existing one keeps its layout.
    pub shards: Option<u32>,
    pub replication_factor: Option<u32>,
    pub write_consistency: Option<u32>,
    /// Embedded store: writes stop (cleanly, with an error) while the data directory's file
    /// system has less than this many MB free. The engine writes through memory maps, where a
    /// full disk would crash the process mid-write. 0: no check.
    pub min_free_mb: u64,
}

impl Default for StoreSection {
    fn default() -> Self {
        Self {
            backend: Backend::Embedded,
            url: "http://127.0.0.1:6334".into(),
            collection: "rag_chunks".into(),
            api_key: None,
            timeout_secs: 30,
            shards: None,
            replication_factor: None,
            write_consistency: None,
            min_free_mb: 128,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientSection {
    /// The query service `rag search` and `rag ask` talk to.
    pub addr: String,
    pub timeout_secs: u64,
    /// The API key the client commands send (`--api-key` and `RAG_API_KEY` override it). Never
    /// written out by `rag config`.
    #[serde(skip_serializing)]
    pub api_key: Option<String>,
    /// For `https://` addresses: the CA that signed the service's certificate (PEM; empty: the
    /// system's trust store), and this client's certificate and key when the service asks for
    /// one (mTLS).
    pub tls_ca_file: PathBuf,
    pub tls_cert_file: PathBuf,
    pub tls_key_file: PathBuf,
}

/// The service's certificate and key (PEM), and the CA whose client certificates it requires
/// (mTLS, for service-to-service calls); empty paths: off.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSection {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub client_ca_file: PathBuf,
}

impl Default for ClientSection {
    fn default() -> Self {
        Self {
            addr: "http://127.0.0.1:50051".into(),
            timeout_secs: 300,
            api_key: None,
            tls_ca_file: PathBuf::new(),
            tls_cert_file: PathBuf::new(),
            tls_key_file: PathBuf::new(),
        }
    }
}

impl Config {
    /// Loads the layers. `file` must exist when given; otherwise `rag.toml` is read if present.
    pub fn load(file: Option<&Path>, overrides: &[(&str, toml::Value)]) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) => {
                anyhow::ensure!(path.is_file(), "config file {} not found", path.display());
                figment = figment.merge(Toml::file_exact(path));
            }
            None => figment = figment.merge(Toml::file(DEFAULT_FILE)),
        }
        // Only keys of known sections: unrelated RAG_* variables must not break start-up.
        const SECTIONS: &[&str] = &[
            "data_dir",
            "store",
            "embedding",
            "rerank",
            "llm",
            "ingest",
            "query",
            "client",
            "auth",
            "tls",
        ];
        figment = figment.merge(Env::prefixed("RAG_").split("__").filter(|key| {
            let key = key.as_str().to_ascii_lowercase();
            SECTIONS.iter().any(|s| key.starts_with(s))
        }));
        for (key, value) in overrides {
            figment = figment.merge(Serialized::default(key, value));
        }
        figment.extract().context("invalid configuration")
    }

    pub fn store(&self) -> StoreConfig {
        match self.store.backend {
            Backend::Embedded => StoreConfig::Embedded {
                data_dir: self.data_dir.clone(),
                min_free_bytes: self.store.min_free_mb * 1_000_000,
            },
            Backend::Qdrant => StoreConfig::Server {
                url: self.store.url.clone(),
                collection: self.store.collection.clone(),
                api_key: self.store.api_key.clone(),
                timeout: std::time::Duration::from_secs(self.store.timeout_secs.max(1)),
                layout: rag_store::Layout {
                    shards: self.store.shards,
                    replication_factor: self.store.replication_factor,
                    write_consistency: self.store.write_consistency,
                },
            },
        }
    }
}

#[cfg(test)]
// figment::Jail fixes the closure's error type; its size is not ours to choose.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn shipped_example_config_loads_and_matches_defaults() {
        // Inside a Jail: the jail lock keeps the other tests' environment variables out.
        figment::Jail::expect_with(|_| {
            let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../rag.example.toml");
            let config = Config::load(Some(Path::new(example)), &[]).unwrap();
            assert_eq!(config, Config::default());
            Ok(())
        });
    }

    #[test]
    fn shipped_multilingual_config_loads() {
        figment::Jail::expect_with(|_| {
            let file = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../examples/multilingual.toml"
            );
            let config = Config::load(Some(Path::new(file)), &[]).unwrap();
            assert_eq!(config.embedding.name, "multilingual-e5-small");
            assert_eq!(config.embedding.query_prefix, "query: ");
            assert_eq!(config.embedding.passage_prefix, "passage: ");
            assert_eq!(config.query.score_threshold, 0.76);
            assert_ne!(config.data_dir, Config::default().data_dir);
            Ok(())
        });
    }

    #[test]
    fn layers_override_in_order() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("c.toml", "data_dir = \"from-file\"\n[llm]\nn_ctx = 1024\n")?;
            jail.set_env("RAG_LLM__N_CTX", "4096");
            jail.set_env("RAG_CONFIG", "ignored");
            let c = Config::load(Some(Path::new("c.toml")), &[]).unwrap();
            assert_eq!(c.data_dir, PathBuf::from("from-file"));
            assert_eq!(c.llm.n_ctx, 4096, "environment beats file");
            let c = Config::load(
                Some(Path::new("c.toml")),
                &[("data_dir", toml::Value::String("from-flag".into()))],
            )
            .unwrap();
            assert_eq!(c.data_dir, PathBuf::from("from-flag"), "flags beat all");
            Ok(())
        });
    }

    /// Every section can be set from the environment (compose and the scripts set keys and
    /// TLS that way).
    #[test]
    fn every_section_takes_environment_variables() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("RAG_AUTH__ENABLED", "false");
            jail.set_env("RAG_AUTH__KEYS_FILE", "/run/keys.toml");
            jail.set_env("RAG_TLS__CERT_FILE", "/run/cert.pem");
            jail.set_env("RAG_CLIENT__TLS_CA_FILE", "/run/ca.pem");
            jail.set_env("RAG_EMBEDDING__MULTILINGUAL", "true");
            let c = Config::load(None, &[]).unwrap();
            assert!(!c.auth.enabled);
            assert_eq!(c.auth.keys_file, PathBuf::from("/run/keys.toml"));
            assert_eq!(c.tls.cert_file, PathBuf::from("/run/cert.pem"));
            assert_eq!(c.client.tls_ca_file, PathBuf::from("/run/ca.pem"));
            assert!(c.embedding.multilingual);
            // Every field of the configuration is in a section the filter lets through.
            let defaults = toml::to_string(&Config::default()).unwrap();
            let tables: Vec<&str> = defaults
                .lines()
                .filter_map(|l| l.strip_prefix('[')?.split(['.', ']']).next())
                .collect();
            for table in tables {
                jail.set_env(format!("RAG_{}__X_UNKNOWN", table.to_uppercase()), "1");
                assert!(
                    Config::load(None, &[]).is_err(),
                    "RAG_{}__* is ignored",
                    table.to_uppercase()
                );
                jail.clear_env();
            }
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_errors() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("c.toml", "[llm]\nmodel = \"x\"\n")?;
            let err = Config::load(Some(Path::new("c.toml")), &[]).unwrap_err();
            assert!(format!("{err:#}").contains("model"), "{err:#}");
            Ok(())
        });
    }
}
