//! Who may call what. A caller presents an API key; the service keeps only its SHA-256 digest,
//! finds the key's entry by comparing digests in constant time, and lets the key's role decide
//! whether the call is allowed. With authentication switched off (local use) the service must
//! listen on loopback only, unless the operator says otherwise in so many words.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rag_store::{DEFAULT_TENANT, NAME_RULE, Visibility, valid_name};
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
    /// Calls of this key under way at once (an Ask counts until its stream ends); beyond it,
    /// RESOURCE_EXHAUSTED. 0: no limit.
    #[serde(default)]
    pub max_in_flight: usize,
    /// Calls of this key per minute, as a bucket refilled continuously (bursts up to the
    /// minute's share); beyond it, RESOURCE_EXHAUSTED with when to retry. 0: no limit.
    #[serde(default)]
    pub requests_per_minute: u32,
    /// The tenant the key acts in: it finds, writes and deletes only that tenant's documents.
    #[serde(default = "default_tenant")]
    pub tenant: String,
    /// Groups whose documents the key may read (besides those open to everyone in the
    /// tenant), and write; `["*"]`: every document of the tenant.
    #[serde(default)]
    pub groups: Vec<String>,
    /// A trusted front end (a chat bot) that passes on the asking user's groups in the
    /// `x-rag-groups` header: the call then reads as that user, within the key's own groups.
    /// Without it, a call carrying the header is refused.
    #[serde(default)]
    pub forward_groups: bool,
}

/// In a key's `groups`: every document of the tenant.
pub const ALL_GROUPS: &str = "*";

/// Keys that name no tenant act in the store's default one.
fn default_tenant() -> String {
    DEFAULT_TENANT.to_owned()
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
    /// Rebuild the store for a new embedding model or chunking recipe.
    Reindex,
}

impl Role {
    /// The least role that may perform `action`; roles are ordered reader < writer < admin.
    fn least_for(action: Action) -> Role {
        match action {
            Action::Search | Action::Ask => Role::Reader,
            Action::Ingest | Action::Delete => Role::Writer,
            Action::Stats | Action::Reindex => Role::Admin,
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

/// The names `name` gives (and the configuration uses), for command-line arguments.
impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Role::Reader, Role::Writer, Role::Admin]
            .into_iter()
            .find(|role| role.name() == s)
            .ok_or_else(|| format!("{s:?}: one of reader, writer, admin"))
    }
}

/// The caller behind a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub key_id: String,
    pub role: Role,
    pub tenant: String,
    /// Group names, or [`ALL_GROUPS`] alone.
    pub groups: Vec<String>,
    pub forward_groups: bool,
}

impl Principal {
    /// What this key's call may read: the key's groups, or — for a key that forwards its
    /// users' groups and a call that names them — the user's groups the key also has.
    pub fn reach(&self, forwarded: Option<Vec<String>>) -> Result<Visibility, AuthError> {
        let all = self.groups.iter().any(|g| g == ALL_GROUPS);
        let Some(user) = forwarded else {
            return Ok(if all {
                Visibility::All
            } else {
                Visibility::Groups(self.groups.clone())
            });
        };
        if !self.forward_groups {
            return Err(AuthError::MayNotForward {
                key_id: self.key_id.clone(),
            });
        }
        Ok(Visibility::Groups(
            user.into_iter()
                .filter(|g| all || self.groups.contains(g))
                .collect(),
        ))
    }
}

/// The groups in an `x-rag-groups` header: comma-separated names (none is allowed: a user in
/// no group reads only what is open to everyone).
pub fn parse_groups(header: &str) -> Result<Vec<String>, String> {
    header
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(|g| {
            if valid_name(g) {
                Ok(g.to_owned())
            } else {
                Err(format!("{g:?} is not a group name ({NAME_RULE})"))
            }
        })
        .collect()
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
    #[error(
        "key {key_id:?} may not pass on a user's groups (x-rag-groups); set forward_groups = true \
         on a key meant for a trusted front end"
    )]
    MayNotForward { key_id: String },
    #[error("key {key_id:?} has {limit} calls under way, its limit; retry when one ends")]
    TooManyInFlight { key_id: String, limit: usize },
    #[error("key {key_id:?} is over its {per_minute} calls per minute; retry in {} ms", .retry_after.as_millis())]
    RateLimited {
        key_id: String,
        per_minute: u32,
        retry_after: Duration,
    },
}

impl AuthError {
    /// The key the error is about, when the key itself was recognised.
    pub fn key_id(&self) -> Option<&str> {
        match self {
            Self::Forbidden { key_id, .. }
            | Self::MayNotForward { key_id }
            | Self::TooManyInFlight { key_id, .. }
            | Self::RateLimited { key_id, .. } => Some(key_id),
            Self::Missing | Self::Unknown => None,
        }
    }

    /// How long the caller should wait before trying again, for the limits that say.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => Some(*retry_after),
            // A call under way usually ends within a second or two.
            Self::TooManyInFlight { .. } => Some(Duration::from_secs(1)),
            _ => None,
        }
    }
}

fn action_name(action: Action) -> &'static str {
    match action {
        Action::Search => "search",
        Action::Ask => "ask",
        Action::Ingest => "ingest documents",
        Action::Delete => "delete documents",
        Action::Stats => "read index statistics",
        Action::Reindex => "rebuild the store",
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
    #[error(
        "auth.keys: key {id:?}: {what} {name:?}: use {NAME_RULE} (or \"*\" alone in groups, for \
         every document of the tenant)"
    )]
    BadName {
        id: String,
        what: &'static str,
        name: String,
    },
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
    limits: Arc<Limits>,
}

/// One key's share of the service: calls under way and its per-minute bucket.
#[derive(Debug)]
struct Limits {
    max_in_flight: usize,
    in_flight: AtomicUsize,
    per_minute: u32,
    /// Tokens left and when they were counted; refilled at `per_minute` / 60 s.
    bucket: Mutex<(f64, Instant)>,
}

impl Limits {
    fn new(max_in_flight: usize, per_minute: u32) -> Self {
        Self {
            max_in_flight,
            in_flight: AtomicUsize::new(0),
            per_minute,
            bucket: Mutex::new((f64::from(per_minute), Instant::now())),
        }
    }

    /// Takes a token, or says how long until one is there.
    fn take_token(&self, now: Instant) -> Result<(), Duration> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let rate = f64::from(self.per_minute) / 60.0;
        let mut bucket = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, at) = *bucket;
        let tokens = (tokens + now.saturating_duration_since(at).as_secs_f64() * rate)
            .min(f64::from(self.per_minute));
        if tokens >= 1.0 {
            *bucket = (tokens - 1.0, now);
            Ok(())
        } else {
            *bucket = (tokens, now);
            Err(Duration::from_secs_f64((1.0 - tokens) / rate))
        }
    }

    /// Counts a call in, unless the key already has its limit under way.
    fn enter(self: &Arc<Self>) -> Option<Permit> {
        if self.max_in_flight == 0 {
            return Some(Permit(None));
        }
        let taken = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_in_flight).then_some(n + 1)
            });
        taken.is_ok().then(|| Permit(Some(self.clone())))
    }
}

/// A call counted against its key's `max_in_flight` until dropped (for Ask: when its stream
/// ends).
#[derive(Debug)]
pub struct Permit(Option<Arc<Limits>>);

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(limits) = &self.0 {
            limits.in_flight.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// A call let in: who made it, and its place in the key's limits.
#[derive(Debug)]
pub struct Admitted {
    pub principal: Principal,
    pub permit: Permit,
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
            let bad = |what, name: &str| ConfigError::BadName {
                id: entry.id.clone(),
                what,
                name: name.to_owned(),
            };
            if !valid_name(&entry.tenant) {
                return Err(bad("tenant", &entry.tenant));
            }
            if let Some(group) = entry
                .groups
                .iter()
                .find(|g| !(valid_name(g) || (*g == ALL_GROUPS && entry.groups.len() == 1)))
            {
                return Err(bad("group", group));
            }
            stored.push(Stored {
                digest,
                principal: Principal {
                    key_id: entry.id,
                    role: entry.role,
                    tenant: entry.tenant,
                    groups: entry.groups,
                    forward_groups: entry.forward_groups,
                },
                limits: Arc::new(Limits::new(entry.max_in_flight, entry.requests_per_minute)),
            });
        }
        Ok(Self { keys: Some(stored) })
    }

    /// Whether calls are checked at all.
    pub fn is_open(&self) -> bool {
        self.keys.is_none()
    }

    /// Whether `key` may perform `action`, without counting the call against the key's limits:
    /// what a door checks before it reads a request's body, so that a caller without a key
    /// cannot make the service read a large one. [`Gate::admit`] checks again, and counts.
    pub fn screen(&self, key: Option<&str>, action: Action) -> Result<(), AuthError> {
        self.allowed(key, action).map(|_| ())
    }

    /// The stored key `key` is, if it may perform `action`; `None` with the gate open.
    fn allowed(&self, key: Option<&str>, action: Action) -> Result<Option<&Stored>, AuthError> {
        let Some(keys) = &self.keys else {
            return Ok(None);
        };
        let key = key.ok_or(AuthError::Missing)?;
        let stored = find(keys, &digest(key)).ok_or(AuthError::Unknown)?;
        let principal = &stored.principal;
        if !principal.role.allows(action) {
            return Err(AuthError::Forbidden {
                key_id: principal.key_id.clone(),
                role: principal.role,
                action,
            });
        }
        Ok(Some(stored))
    }

    /// The caller presenting `key` (`None`: no key sent), if it may perform `action` and is
    /// within its limits. With the gate open there is no caller to name or limit.
    pub fn admit(&self, key: Option<&str>, action: Action) -> Result<Option<Admitted>, AuthError> {
        let Some(stored) = self.allowed(key, action)? else {
            return Ok(None);
        };
        let principal = &stored.principal;
        let permit = stored
            .limits
            .enter()
            .ok_or_else(|| AuthError::TooManyInFlight {
                key_id: principal.key_id.clone(),
                limit: stored.limits.max_in_flight,
            })?;
        // The permit is released if the bucket refuses: a refused call is not under way.
        stored
            .limits
            .take_token(Instant::now())
            .map_err(|retry_after| AuthError::RateLimited {
                key_id: principal.key_id.clone(),
                per_minute: stored.limits.per_minute,
                retry_after,
            })?;
        Ok(Some(Admitted {
            principal: principal.clone(),
            permit,
        }))
    }
}

/// Compares the digest with every stored one, without stopping at a match, so the time taken
/// says nothing about which key (or how much of one) matched.
fn find<'a>(keys: &'a [Stored], digest: &[u8; 32]) -> Option<&'a Stored> {
    let mut found = subtle::Choice::from(0);
    let mut index = 0u32;
    for (i, stored) in keys.iter().enumerate() {
        let hit = stored.digest.ct_eq(digest);
        index = u32::conditional_select(&index, &(i as u32), hit);
        found |= hit;
    }
    bool::from(found).then(|| &keys[index as usize])
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

    /// A key entry with no limits, in the default tenant, open documents only.
    fn entry(id: impl Into<String>, sha256: impl Into<String>, role: Role) -> KeyEntry {
        KeyEntry {
            id: id.into(),
            sha256: sha256.into(),
            role,
            max_in_flight: 0,
            requests_per_minute: 0,
            tenant: DEFAULT_TENANT.into(),
            groups: Vec::new(),
            forward_groups: false,
        }
    }

    fn loopback() -> SocketAddr {
        "127.0.0.1:50051".parse().unwrap()
    }

    fn gate_with(keys: &[(&str, &str, Role)]) -> Gate {
        let config = AuthConfig {
            keys: keys
                .iter()
                .map(|(id, key, role)| entry(*id, hex::encode(digest(key)), *role))
                .collect(),
            ..AuthConfig::default()
        };
        Gate::from_config(&config, "0.0.0.0:50051".parse().unwrap()).unwrap()
    }

    #[test]
    fn role_names_read_back() {
        for role in [Role::Reader, Role::Writer, Role::Admin] {
            assert_eq!(role.name().parse::<Role>(), Ok(role));
        }
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn roles_grant_what_the_issue_lists_and_nothing_more() {
        use Action::*;
        let table = [
            (Role::Reader, [true, true, false, false, false, false]),
            (Role::Writer, [true, true, true, true, false, false]),
            (Role::Admin, [true, true, true, true, true, true]),
        ];
        for (role, allowed) in table {
            for (action, want) in [Search, Ask, Ingest, Delete, Stats, Reindex]
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
        assert_eq!(bot.principal.key_id, "bot");
        assert_eq!(
            gate.admit(Some("rag_bot"), Action::Ingest).unwrap_err(),
            AuthError::Forbidden {
                key_id: "bot".into(),
                role: Role::Reader,
                action: Action::Ingest
            }
        );
        assert_eq!(
            gate.admit(Some("rag_ops"), Action::Stats)
                .unwrap()
                .unwrap()
                .principal
                .key_id,
            "ops"
        );
        assert_eq!(
            gate.admit(None, Action::Search).unwrap_err(),
            AuthError::Missing
        );
        assert_eq!(
            gate.admit(Some("rag_bo"), Action::Search).unwrap_err(),
            AuthError::Unknown
        );
        assert_eq!(
            gate.admit(Some(""), Action::Search).unwrap_err(),
            AuthError::Unknown
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
                keys: vec![entry("new", digest_hex, Role::Writer)],
                ..AuthConfig::default()
            },
            loopback(),
        )
        .unwrap();
        assert!(gate.admit(Some(&key), Action::Ingest).unwrap().is_some());
        assert_eq!(
            gate.admit(Some(&other), Action::Search).unwrap_err(),
            AuthError::Unknown
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
            keys: vec![entry("x", "not hex", Role::Reader)],
            ..AuthConfig::default()
        };
        assert!(matches!(
            Gate::from_config(&bad, loopback()),
            Err(ConfigError::BadDigest { .. })
        ));
        let entry = entry("x", hex::encode([0u8; 32]), Role::Reader);
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
                .principal
                .key_id,
            "filed"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn limited(max_in_flight: usize, requests_per_minute: u32) -> Gate {
        Gate::from_config(
            &AuthConfig {
                keys: vec![KeyEntry {
                    max_in_flight,
                    requests_per_minute,
                    ..entry("bot", hex::encode(digest("rag_bot")), Role::Reader)
                }],
                ..AuthConfig::default()
            },
            loopback(),
        )
        .unwrap()
    }

    #[test]
    fn calls_under_way_are_counted_until_they_end() {
        let gate = limited(2, 0);
        let first = gate.admit(Some("rag_bot"), Action::Ask).unwrap();
        let second = gate.admit(Some("rag_bot"), Action::Ask).unwrap();
        let refused = gate.admit(Some("rag_bot"), Action::Search).unwrap_err();
        assert_eq!(
            refused,
            AuthError::TooManyInFlight {
                key_id: "bot".into(),
                limit: 2
            }
        );
        assert!(refused.retry_after().is_some());
        drop(first);
        let third = gate.admit(Some("rag_bot"), Action::Search).unwrap();
        drop((second, third));
        // Refused calls took nothing: two fit again.
        let _a = gate.admit(Some("rag_bot"), Action::Ask).unwrap();
        let _b = gate.admit(Some("rag_bot"), Action::Ask).unwrap();
    }

    #[test]
    fn the_per_minute_bucket_refuses_with_the_time_until_the_next_token() {
        let gate = limited(0, 3);
        for _ in 0..3 {
            gate.admit(Some("rag_bot"), Action::Search).unwrap();
        }
        let refused = gate.admit(Some("rag_bot"), Action::Search).unwrap_err();
        let wait = refused.retry_after().expect("a retry hint");
        // 3 per minute: one token every 20 s; almost none has accrued yet.
        assert!(
            wait > Duration::from_secs(19) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        let limits = Limits::new(0, 60);
        let start = Instant::now();
        for _ in 0..60 {
            limits.take_token(start).unwrap();
        }
        assert!(limits.take_token(start).is_err());
        // One per second refills.
        limits
            .take_token(start + Duration::from_millis(1001))
            .unwrap();
        assert!(
            limits
                .take_token(start + Duration::from_millis(1002))
                .is_err()
        );
    }

    #[test]
    fn a_call_refused_by_the_rate_does_not_stay_counted_as_under_way() {
        let gate = limited(1, 1);
        drop(gate.admit(Some("rag_bot"), Action::Search).unwrap());
        assert!(matches!(
            gate.admit(Some("rag_bot"), Action::Search),
            Err(AuthError::RateLimited { .. })
        ));
        // Not TooManyInFlight: the refused call released its place.
        assert!(matches!(
            gate.admit(Some("rag_bot"), Action::Search),
            Err(AuthError::RateLimited { .. })
        ));
    }

    fn principal(groups: &[&str], forward_groups: bool) -> Principal {
        Principal {
            key_id: "bot".into(),
            role: Role::Reader,
            tenant: "acme".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            forward_groups,
        }
    }

    fn only(groups: &[&str]) -> Visibility {
        Visibility::Groups(groups.iter().map(|g| g.to_string()).collect())
    }

    #[test]
    fn a_call_reads_as_its_key_or_as_the_user_a_trusted_key_names_within_its_own_groups() {
        assert_eq!(
            principal(&["eng"], false).reach(None).unwrap(),
            only(&["eng"])
        );
        assert_eq!(principal(&[], false).reach(None).unwrap(), only(&[]));
        assert_eq!(
            principal(&["*"], false).reach(None).unwrap(),
            Visibility::All
        );
        let err = principal(&["*"], false)
            .reach(Some(vec!["hr".into()]))
            .unwrap_err();
        assert!(matches!(err, AuthError::MayNotForward { .. }), "{err}");
        assert_eq!(err.key_id(), Some("bot"));
        // A bot that may read everything reads as the user; a narrower bot never beyond itself.
        let user = || Some(vec!["hr".to_owned(), "eng".to_owned()]);
        assert_eq!(
            principal(&["*"], true).reach(user()).unwrap(),
            only(&["hr", "eng"])
        );
        assert_eq!(
            principal(&["eng"], true).reach(user()).unwrap(),
            only(&["eng"])
        );
        assert_eq!(
            principal(&["*"], true).reach(Some(vec![])).unwrap(),
            only(&[])
        );
        assert_eq!(parse_groups(" hr, eng ,").unwrap(), ["hr", "eng"]);
        assert!(parse_groups("hr,*").is_err());
        assert!(parse_groups("a b").is_err());
    }

    #[test]
    fn tenants_and_groups_of_keys_are_checked_at_start() {
        let listen: SocketAddr = "127.0.0.1:50051".parse().unwrap();
        let with = |tenant: &str, groups: &[&str]| AuthConfig {
            keys: vec![KeyEntry {
                tenant: tenant.into(),
                groups: groups.iter().map(|g| g.to_string()).collect(),
                ..entry("k", hex::encode([0u8; 32]), Role::Reader)
            }],
            ..AuthConfig::default()
        };
        Gate::from_config(&with("acme", &["hr", "eng"]), listen).unwrap();
        Gate::from_config(&with("acme", &["*"]), listen).unwrap();
        for (tenant, groups) in [
            ("", &[][..]),
            ("a/b", &[]),
            ("acme", &["hr", "*"]),
            ("acme", &["a,b"]),
        ] {
            let err = Gate::from_config(&with(tenant, groups), listen).unwrap_err();
            assert!(
                matches!(err, ConfigError::BadName { .. }),
                "{tenant} {groups:?}: {err}"
            );
        }
        // A key that names no tenant acts in the default one.
        let entry: KeyEntry =
            toml::from_str("id = \"k\"\nsha256 = \"00\"\nrole = \"reader\"").unwrap();
        assert_eq!(entry.tenant, DEFAULT_TENANT);
        assert!(entry.groups.is_empty() && !entry.forward_groups);
    }
}
