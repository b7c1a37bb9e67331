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
    pub store: rag_store::StoreSettings,
    pub embedding: EmbedConfig,
    /// Optional cross-encoder reranking of the fused candidates.
    pub rerank: RerankConfig,
    pub llm: LlmConfig,
    pub ingest: IngestConfig,
    /// Where the service listens, and how it answers: one `[query]` table, two owners.
    pub query: QuerySection,
    pub client: ClientSection,
    /// API keys and roles (on unless switched off for local use).
    pub auth: AuthConfig,
    /// TLS for the gRPC listener (off unless a certificate is given).
    pub tls: TlsSection,
    /// Limits on the connections of both doors: how many, and how long they may sit idle or
    /// stalled.
    pub connections: rag_listen::Limits,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: "data".into(),
            store: rag_store::StoreSettings::default(),
            embedding: EmbedConfig::default(),
            rerank: RerankConfig::default(),
            llm: LlmConfig::default(),
            ingest: IngestConfig::default(),
            query: QuerySection::default(),
            client: ClientSection::default(),
            auth: AuthConfig::default(),
            tls: TlsSection::default(),
            connections: rag_listen::Limits::default(),
        }
    }
}

/// The `[query]` table: the listeners are the service's (`rag serve`), the rest the engine's
/// ([`QueryConfig`], which has no transport). Read and written as one table, as it always
/// was, with unknown keys refused as in every other section.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QuerySection {
    pub listeners: Listeners,
    pub engine: QueryConfig,
}

/// The addresses `rag serve` listens on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Listeners {
    /// gRPC; port 0 picks a free port.
    pub listen: std::net::SocketAddr,
    /// Admin HTTP for Prometheus `/metrics`, `/healthz` and `/readyz`; unset: off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_listen: Option<std::net::SocketAddr>,
    /// HTTP for the JSON API, the OpenAI-compatible chat endpoint and the chat page; unset:
    /// off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_listen: Option<std::net::SocketAddr>,
}

impl Default for Listeners {
    fn default() -> Self {
        Self {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 50051)),
            admin_listen: None,
            http_listen: None,
        }
    }
}

const LISTENER_KEYS: [&str; 3] = ["listen", "admin_listen", "http_listen"];

impl Serialize for QuerySection {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let mut table = toml::Table::try_from(&self.listeners).map_err(S::Error::custom)?;
        table.extend(toml::Table::try_from(&self.engine).map_err(S::Error::custom)?);
        table.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for QuerySection {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut engine = toml::Table::deserialize(deserializer)?;
        let listeners: toml::Table = LISTENER_KEYS
            .iter()
            .filter_map(|&key| engine.remove(key).map(|value| (key.to_owned(), value)))
            .collect();
        Ok(Self {
            listeners: listeners.try_into().map_err(D::Error::custom)?,
            engine: engine.try_into().map_err(D::Error::custom)?,
        })
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
            "connections",
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

    /// The configuration as `rag config` prints it: TOML, with every secret that is set
    /// replaced by [`REDACTED`] (see [`is_secret`]) and the password of any URL hidden.
    /// `client.api_key` is never written at all.
    pub fn to_redacted_toml(&self) -> anyhow::Result<String> {
        let mut value = toml::Value::try_from(self).context("serialising the configuration")?;
        redact(&mut value, false);
        // Back through the typed configuration, so that the output keeps its order.
        let redacted: Config = value
            .try_into()
            .context("reading back the redacted configuration")?;
        Ok(toml::to_string_pretty(&redacted)?)
    }

    pub fn store(&self) -> StoreConfig {
        self.store.config(&self.data_dir)
    }
}

/// What `rag config` prints in place of a secret that is set (an empty one stays empty).
pub const REDACTED: &str = "***redacted***";

/// Whether a configuration key holds a secret, by its name: API keys (`store.api_key`),
/// tokens, passwords, secrets, and the digests of the service's own keys (`auth.keys.sha256`,
/// kept out of sight like the keys). By name, so that a secret added to any section later is
/// redacted too.
fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    matches!(
        key.as_str(),
        "key" | "api_key" | "apikey" | "token" | "secret" | "password" | "passwd" | "sha256"
    ) || [
        "_key",
        "_token",
        "_secret",
        "_password",
        "_passwd",
        "_credentials",
    ]
    .iter()
    .any(|suffix| key.ends_with(suffix))
}

/// Redacts `value` in place: every non-empty string under a secret key (`secret`), and the
/// user information of URLs everywhere.
fn redact(value: &mut toml::Value, secret: bool) {
    match value {
        toml::Value::String(s) if secret && !s.is_empty() => *s = REDACTED.to_owned(),
        toml::Value::String(_) if secret => {}
        // `store.url` may list several addresses.
        toml::Value::String(s) if s.split(',').any(|u| without_url_credentials(u).is_some()) => {
            *s = s
                .split(',')
                .map(|u| without_url_credentials(u).unwrap_or_else(|| u.to_owned()))
                .collect::<Vec<_>>()
                .join(",");
        }
        toml::Value::String(_) => {}
        toml::Value::Array(items) => items.iter_mut().for_each(|v| redact(v, secret)),
        toml::Value::Table(table) => {
            for (key, v) in table.iter_mut() {
                redact(v, secret || is_secret(key));
            }
        }
        _ => {}
    }
}

/// `scheme://user:password@host/...` with its user information redacted; `None` for text
/// without any.
fn without_url_credentials(text: &str) -> Option<String> {
    let (scheme, rest) = text.split_once("://")?;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = rest[..authority_end].rfind('@')?;
    Some(format!("{scheme}://{REDACTED}{}", &rest[at..]))
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
            assert_eq!(config.query.engine.score_threshold, 0.76);
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

    /// `rag config` shows that a secret is set, never what it is.
    #[test]
    fn printed_configuration_redacts_every_secret() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("RAG_STORE__API_KEY", "qdrant-secret-1");
            jail.set_env("RAG_CLIENT__API_KEY", "rag_client-secret-2");
            jail.set_env(
                "RAG_AUTH__KEYS",
                "[{id = \"ops\", sha256 = \"digest-secret-3\", role = \"admin\"}]",
            );
            jail.set_env(
                "RAG_STORE__URL",
                "https://user:url-secret-4@qdrant:6334/x, https://peer:url-secret-5@qdrant-2:6334",
            );
            let config = Config::load(None, &[]).unwrap();
            assert_eq!(config.store.api_key.as_deref(), Some("qdrant-secret-1"));
            assert_eq!(config.auth.keys[0].sha256, "digest-secret-3");
            let printed = config.to_redacted_toml().unwrap();
            for secret in [
                "secret-1", "secret-2", "secret-3", "secret-4", "secret-5", "user:", "peer:",
            ] {
                assert!(!printed.contains(secret), "{secret} in:\n{printed}");
            }
            assert!(
                printed.contains(&format!("api_key = \"{REDACTED}\"")),
                "{printed}"
            );
            assert!(
                printed.contains(&format!("sha256 = \"{REDACTED}\"")),
                "{printed}"
            );
            assert!(printed.contains(&format!(
                "url = \"https://{REDACTED}@qdrant:6334/x, https://{REDACTED}@qdrant-2:6334\""
            )));
            // Everything else as it was, in its order.
            let back: Config = toml::from_str(&printed).unwrap();
            assert_eq!(back.auth.keys[0].id, "ops");
            assert_eq!(back.data_dir, config.data_dir);
            Ok(())
        });
        // Nothing is redacted that is not set; no setting of the defaults looks secret.
        let defaults = Config::default();
        assert_eq!(
            defaults.to_redacted_toml().unwrap(),
            toml::to_string_pretty(&defaults).unwrap()
        );
    }

    #[test]
    fn secret_names() {
        for name in [
            "api_key",
            "key",
            "hf_token",
            "client_secret",
            "password",
            "sha256",
        ] {
            assert!(is_secret(name), "{name}");
        }
        for name in [
            "keys",
            "keys_file",
            "key_file",
            "max_tokens",
            "cache_type_k",
            "url",
        ] {
            assert!(!is_secret(name), "{name}");
        }
        assert_eq!(without_url_credentials("http://127.0.0.1:6334"), None);
        assert_eq!(without_url_credentials("http://h/a@b"), None);
        assert_eq!(
            without_url_credentials("http://u:p@h:1/a@b").as_deref(),
            Some("http://***redacted***@h:1/a@b")
        );
    }

    #[test]
    fn the_query_table_holds_the_listeners_and_the_engine_settings() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "c.toml",
                "[query]\nlisten = \"127.0.0.1:7000\"\nhttp_listen = \"127.0.0.1:7001\"\ntop_k = 3\n",
            )?;
            jail.set_env("RAG_QUERY__ADMIN_LISTEN", "127.0.0.1:7002");
            jail.set_env("RAG_QUERY__SCORE_THRESHOLD", "0.5");
            let config = Config::load(Some(Path::new("c.toml")), &[]).unwrap();
            let listeners = &config.query.listeners;
            assert_eq!(listeners.listen.port(), 7000);
            assert_eq!(listeners.http_listen.map(|a| a.port()), Some(7001));
            assert_eq!(listeners.admin_listen.map(|a| a.port()), Some(7002));
            assert_eq!(config.query.engine.top_k, 3);
            assert_eq!(config.query.engine.score_threshold, 0.5);
            // Printed and read back as one table.
            let printed: Config = toml::from_str(&config.to_redacted_toml().unwrap()).unwrap();
            assert_eq!(printed.query, config.query);
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_errors() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("c.toml", "[llm]\nmodel = \"x\"\n")?;
            let err = Config::load(Some(Path::new("c.toml")), &[]).unwrap_err();
            assert!(format!("{err:#}").contains("model"), "{err:#}");
            // `[query]` is read in two parts (listeners, engine); a typo is still refused.
            jail.create_file("q.toml", "[query]\ntop_kk = 3\n")?;
            let err = Config::load(Some(Path::new("q.toml")), &[]).unwrap_err();
            assert!(format!("{err:#}").contains("top_kk"), "{err:#}");
            Ok(())
        });
    }
}
