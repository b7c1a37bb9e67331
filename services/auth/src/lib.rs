//! Who may call what. A caller presents an API key; the service keeps only its SHA-256 digest,
//! finds the key's entry by comparing digests in constant time, and lets the key's role decide
//! whether the call is allowed. With authentication switched off (local use) the service must
//! listen on loopback only, unless the operator says otherwise in so many words.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

/// The prefix of every key `generate` makes: recognisable in a leaked log or a secret scanner.
pub const KEY_PREFIX: &str = "rag_";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Off only for local use: the service then refuses to listen beyond loopback unless
    /// `allow_unauthenticated_remote` is also set.
    pub enabled: bool,
    /// The operator's explicit choice to serve without keys on a non-loopback address (e.g.
    /// behind a proxy that authenticates). Never the default.
    pub allow_unauthenticated_remote: bool,
    /// Keys given in the configuration itself.
    pub keys: Vec<KeyEntry>,
    /// A TOML file of `[[keys]]` tables, read at start: keeps the digests out of the main file
    /// (a container secret, say). Empty: none.
    pub keys_file: PathBuf,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            allow_unauthenticated_remote: false,
            keys: Vec::new(),
            keys_file: PathBuf::new(),
        }
    }
}

/// One key as configured: never the key itself, only its digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    /// A name for the key, logged with every call it makes (the audit log's `key`).
    pub id: String,
    /// SHA-256 of the key, hex (what `rag keys new` prints).
    pub sha256: String,
    pub role: Role,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Search and Ask.
    Reader,
    /// A reader that may also add and delete documents.
    Writer,
    /// A writer that may also read the index's statistics (and future admin calls).
    Admin,
}

/// What a call does, as far as permissions go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Search,
    Ask,
    Ingest,
    Delete,
    Stats,
}

impl Role {
    /// The least role that may perform `action`; roles are ordered reader < writer < admin.
    fn least_for(action: Action) -> Role {
        match action {
            Action::Search | Action::Ask => Role::Reader,
            Action::Ingest | Action::Delete => Role::Writer,
            Action::Stats => Role::Admin,
        }
    }

    pub fn allows(self, action: Action) -> bool {
        self >= Self::least_for(action)
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Writer => "writer",
            Role::Admin => "admin",
        }
    }
}

/// The caller behind a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub key_id: String,
    pub role: Role,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("no API key: send `authorization: Bearer <key>`")]
    Missing,
    #[error("the API key is not valid")]
    Unknown,
    #[error("key {key_id:?} has role {role}, which may not {action}", role = .role.name(), action = action_name(*.action))]
    Forbidden {
        key_id: String,
        role: Role,
        action: Action,
    },
}

fn action_name(action: Action) -> &'static str {
    match action {
        Action::Search => "search",
        Action::Ask => "ask",
        Action::Ingest => "ingest documents",
        Action::Delete => "delete documents",
        Action::Stats => "read index statistics",
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "authentication is on but no keys are configured: create one with `rag keys new --id NAME \
         --role reader` and add it under [[auth.keys]] (or auth.keys_file), or set \
         auth.enabled = false for local use on loopback"
    )]
    NoKeys,
    #[error("auth.keys: key {id:?}: sha256 must be 64 hex digits (what `rag keys new` prints)")]
    BadDigest { id: String },
    #[error("auth.keys: key id {0:?} appears twice")]
    DuplicateId(String),
    #[error("auth.keys: a key id must not be empty")]
    EmptyId,
    #[error("auth.keys_file {path}: {reason}")]
    KeysFile { path: PathBuf, reason: String },
    #[error(
        "authentication is off (auth.enabled = false) and the service would listen on {addr}, \
         beyond loopback: anyone who reaches it could read and change every document. Configure \
         API keys, listen on 127.0.0.1, or set auth.allow_unauthenticated_remote = true if \
         something in front of the service authenticates"
    )]
    OpenListener { addr: SocketAddr },
}

/// The service's gatekeeper: the configured keys, or nobody checked (local use).
#[derive(Debug, Clone)]
pub struct Gate {
    keys: Option<Vec<Stored>>,
}

#[derive(Debug, Clone)]
struct Stored {
    digest: [u8; 32],
    principal: Principal,
}

/// The keys file's shape: `[[keys]]` tables.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysFile {
    #[serde(default)]
    keys: Vec<KeyEntry>,
}

impl Gate {
    /// Everyone is let in: for local use and for in-process benchmarks on loopback.
    pub fn open() -> Self {
        Self { keys: None }
    }

    /// The gate the configuration describes, checked against the address it will listen on.
    pub fn from_config(config: &AuthConfig, listen: SocketAddr) -> Result<Self, ConfigError> {
        if !config.enabled {
            if !listen.ip().is_loopback() && !config.allow_unauthenticated_remote {
                return Err(ConfigError::OpenListener { addr: listen });
            }
            return Ok(Self::open());
        }
        let mut entries = config.keys.clone();
        if !config.keys_file.as_os_str().is_empty() {
            entries.extend(read_keys_file(&config.keys_file)?);
        }
        if entries.is_empty() {
            return Err(ConfigError::NoKeys);
        }
        let mut stored: Vec<Stored> = Vec::with_capacity(entries.len());
        for entry in entries {
            if entry.id.trim().is_empty() {
                return Err(ConfigError::EmptyId);
            }
            if stored.iter().any(|s| s.principal.key_id == entry.id) {
                return Err(ConfigError::DuplicateId(entry.id));
            }
            let digest = parse_digest(&entry.sha256).ok_or_else(|| ConfigError::BadDigest {
                id: entry.id.clone(),
            })?;
            stored.push(Stored {
                digest,
                principal: Principal {
                    key_id: entry.id,
                    role: entry.role,
                },
            });
        }
        Ok(Self { keys: Some(stored) })
    }

    /// Whether calls are checked at all.
    pub fn is_open(&self) -> bool {
        self.keys.is_none()
    }

    /// The caller presenting `key` (`None`: no key sent), if it may perform `action`. With the
    /// gate open there is no principal.
    pub fn admit(&self, key: Option<&str>, action: Action) -> Result<Option<Principal>, AuthError> {
        let Some(keys) = &self.keys else {
            return Ok(None);
        };
        let key = key.ok_or(AuthError::Missing)?;
        let principal = find(keys, &digest(key)).ok_or(AuthError::Unknown)?;
        if !principal.role.allows(action) {
            return Err(AuthError::Forbidden {
                key_id: principal.key_id.clone(),
                role: principal.role,
                action,
            });
        }
        Ok(Some(principal.clone()))
    }
}

/// Compares the digest with every stored one, without stopping at a match, so the time taken
/// says nothing about which key (or how much of one) matched.
fn find<'a>(keys: &'a [Stored], digest: &[u8; 32]) -> Option<&'a Principal> {
    let mut found = subtle::Choice::from(0);
    let mut index = 0u32;
    for (i, stored) in keys.iter().enumerate() {
        let hit = stored.digest.ct_eq(digest);
        index = u32::conditional_select(&index, &(i as u32), hit);
        found |= hit;
    }
    bool::from(found).then(|| &keys[index as usize].principal)
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

fn parse_digest(hex_digest: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_digest.trim(), &mut out).ok()?;
    Some(out)
}

fn read_keys_file(path: &Path) -> Result<Vec<KeyEntry>, ConfigError> {
    let err = |reason: String| ConfigError::KeysFile {
        path: path.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let file: KeysFile = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
    Ok(file.keys)
}

/// A new key and its digest: the key is shown to the operator once; the digest goes in the
/// configuration.
pub fn generate() -> (String, String) {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    let key = format!("{KEY_PREFIX}{}", hex::encode(bytes));
    let digest = hex::encode(digest(&key));
    (key, digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> SocketAddr {
        "127.0.0.1:50051".parse().unwrap()
    }

    fn gate_with(keys: &[(&str, &str, Role)]) -> Gate {
        let config = AuthConfig {
            keys: keys
                .iter()
                .map(|(id, key, role)| KeyEntry {
                    id: (*id).into(),
                    sha256: hex::encode(digest(key)),
                    role: *role,
                })
                .collect(),
            ..AuthConfig::default()
        };
        Gate::from_config(&config, "0.0.0.0:50051".parse().unwrap()).unwrap()
    }

    #[test]
    fn roles_grant_what_the_issue_lists_and_nothing_more() {
        use Action::*;
        let table = [
            (Role::Reader, [true, true, false, false, false]),
            (Role::Writer, [true, true, true, true, false]),
            (Role::Admin, [true, true, true, true, true]),
        ];
        for (role, allowed) in table {
            for (action, want) in [Search, Ask, Ingest, Delete, Stats]
                .into_iter()
                .zip(allowed)
            {
                assert_eq!(role.allows(action), want, "{role:?} {action:?}");
            }
        }
    }

    #[test]
    fn a_key_is_found_by_its_digest_and_judged_by_its_role() {
        let gate = gate_with(&[
            ("bot", "rag_bot", Role::Reader),
            ("ops", "rag_ops", Role::Admin),
        ]);
        let bot = gate.admit(Some("rag_bot"), Action::Ask).unwrap().unwrap();
        assert_eq!(bot.key_id, "bot");
        assert_eq!(
            gate.admit(Some("rag_bot"), Action::Ingest),
            Err(AuthError::Forbidden {
                key_id: "bot".into(),
                role: Role::Reader,
                action: Action::Ingest
            })
        );
        assert_eq!(
            gate.admit(Some("rag_ops"), Action::Stats)
                .unwrap()
                .unwrap()
                .key_id,
            "ops"
        );
        assert_eq!(gate.admit(None, Action::Search), Err(AuthError::Missing));
        assert_eq!(
            gate.admit(Some("rag_bo"), Action::Search),
            Err(AuthError::Unknown)
        );
        assert_eq!(
            gate.admit(Some(""), Action::Search),
            Err(AuthError::Unknown)
        );
    }

    #[test]
    fn generated_keys_match_their_digest_and_differ() {
        let (key, digest_hex) = generate();
        let (other, _) = generate();
        assert!(key.starts_with(KEY_PREFIX) && key.len() == KEY_PREFIX.len() + 64);
        assert_ne!(key, other);
        let gate = Gate::from_config(
            &AuthConfig {
                keys: vec![KeyEntry {
                    id: "new".into(),
                    sha256: digest_hex,
                    role: Role::Writer,
                }],
                ..AuthConfig::default()
            },
            loopback(),
        )
        .unwrap();
        assert!(gate.admit(Some(&key), Action::Ingest).unwrap().is_some());
        assert_eq!(
            gate.admit(Some(&other), Action::Search),
            Err(AuthError::Unknown)
        );
    }

    #[test]
    fn without_keys_the_service_stays_on_loopback_unless_told_otherwise() {
        let off = AuthConfig {
            enabled: false,
            ..AuthConfig::default()
        };
        assert!(Gate::from_config(&off, loopback()).unwrap().is_open());
        assert!(Gate::from_config(&off, "[::1]:1".parse().unwrap()).is_ok());
        let open = "0.0.0.0:50051".parse().unwrap();
        let refused = Gate::from_config(&off, open).unwrap_err();
        assert!(refused.to_string().contains("0.0.0.0:50051"), "{refused}");
        let told = AuthConfig {
            allow_unauthenticated_remote: true,
            ..off
        };
        assert!(Gate::from_config(&told, open).unwrap().is_open());
    }

    #[test]
    fn configuration_mistakes_are_refused_at_start() {
        let on = AuthConfig::default();
        assert!(matches!(
            Gate::from_config(&on, loopback()),
            Err(ConfigError::NoKeys)
        ));
        let bad = AuthConfig {
            keys: vec![KeyEntry {
                id: "x".into(),
                sha256: "not hex".into(),
                role: Role::Reader,
            }],
            ..AuthConfig::default()
        };
        assert!(matches!(
            Gate::from_config(&bad, loopback()),
            Err(ConfigError::BadDigest { .. })
        ));
        let entry = KeyEntry {
            id: "x".into(),
            sha256: hex::encode([0u8; 32]),
            role: Role::Reader,
        };
        let twice = AuthConfig {
            keys: vec![entry.clone(), entry],
            ..AuthConfig::default()
        };
        assert!(matches!(
            Gate::from_config(&twice, loopback()),
            Err(ConfigError::DuplicateId(_))
        ));
    }

    #[test]
    fn keys_can_come_from_a_file_of_their_own() {
        let dir = std::env::temp_dir().join(format!("rag-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("keys.toml");
        std::fs::write(
            &path,
            format!(
                "[[keys]]\nid = \"filed\"\nsha256 = \"{}\"\nrole = \"writer\"\n",
                hex::encode(digest("rag_filed"))
            ),
        )
        .unwrap();
        let gate = Gate::from_config(
            &AuthConfig {
                keys_file: path.clone(),
                ..AuthConfig::default()
            },
            loopback(),
        )
        .unwrap();
        assert_eq!(
            gate.admit(Some("rag_filed"), Action::Delete)
                .unwrap()
                .unwrap()
                .key_id,
            "filed"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
