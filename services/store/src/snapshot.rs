//! Backups (`rag snapshot create|restore`): the store's points, whole (id, every vector, the
//! full payload, all tenants), in one gzip file of JSON lines, written through the same
//! interface for both backends.
//!
//! Why not Qdrant's own snapshots: on a cluster a collection snapshot holds only the shards of
//! the peer that makes it, it is fetched and recovered over the REST port, and recovery wants
//! the file on the server's machine; the embedded engine has no snapshot call at all. One
//! format for all three also moves a store from the embedded engine to a server, and back.
//!
//! The file: a header line (format, schema version, embedding model and vector size), one
//! line per point, and a closing line with the point count and a BLAKE3 digest of every line
//! before it. It is written under a temporary name and renamed when complete; a restore reads
//! it through once to check the digest before it writes anything, and only into an empty
//! store.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::backend::{Filter, NamedVector, NewPoint, Payload, VectorData};
use crate::migrations;
use crate::{Result, Store, StoreConfig, StoreError};

const FORMAT: &str = "rag-snapshot";
/// Bumped when the file's layout changes (not when the store's schema does: that is in the
/// header).
const FORMAT_VERSION: u32 = 1;
/// Points per export page and per restore upsert.
const PAGE: usize = 512;

/// What a snapshot holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    pub points: u64,
    pub schema_version: u32,
    pub embedding_model: String,
    pub vector_size: usize,
    /// Where it was made ("embedded store /var/lib/rag", "collection ... on Qdrant server ...").
    pub source: String,
    pub created_at_ms: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum Line {
    Header {
        format: String,
        format_version: u32,
        #[serde(flatten)]
        info: HeaderInfo,
    },
    Point {
        id: uuid::Uuid,
        vectors: BTreeMap<String, StoredVector>,
        payload: Payload,
    },
    End {
        points: u64,
        /// BLAKE3 of every line before this one, newlines included.
        blake3: String,
    },
}

#[derive(Serialize, Deserialize)]
struct HeaderInfo {
    schema_version: u32,
    embedding_model: String,
    vector_size: usize,
    source: String,
    created_at_ms: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum StoredVector {
    /// Little-endian f32s, base64: exact, and a third of the size of decimal text.
    Dense(String),
    Sparse {
        indices: Vec<u32>,
        values: Vec<f32>,
    },
}

impl Store {
    /// Writes every point of the store (all tenants) to `path`, atomically: the file appears
    /// only once complete. Points written meanwhile may or may not be in it; a document caught
    /// half-written is in it as an unfinished version, which readers skip and the next ingest
    /// of that document replaces, as after a crash.
    pub async fn snapshot(&self, path: &Path) -> Result<SnapshotInfo> {
        let schema = self.backend.schema().await?.ok_or_else(|| {
            StoreError::Operation(format!("{}: no store to snapshot", self.backend.describe()))
        })?;
        let info = HeaderInfo {
            schema_version: schema.version,
            embedding_model: schema.embedding_model,
            vector_size: schema.vector_size,
            source: self.backend.describe(),
            created_at_ms: now_ms(),
        };
        let (tx, rx) = mpsc::channel::<Vec<NewPoint>>(2);
        let path_owned = path.to_owned();
        let writer = tokio::task::spawn_blocking(move || write_file(&path_owned, info, rx));
        let mut offset = None;
        loop {
            let page = match self.backend.export(offset, PAGE).await {
                Ok(page) => page,
                Err(e) => {
                    drop(tx);
                    let _ = writer.await;
                    return Err(e);
                }
            };
            if !page.points.is_empty() && tx.send(page.points).await.is_err() {
                break; // The writer failed: its error is returned below.
            }
            match page.next {
                Some(next) => offset = Some(next),
                None => break,
            }
        }
        drop(tx);
        writer
            .await
            .map_err(|e| StoreError::Operation(format!("snapshot writer: {e}")))?
    }
}

/// Restores the snapshot at `path` into the store `config` names, which must be empty (or not
/// exist yet): it is created for the snapshot's embedding model, filled, and its search index
/// built. The file is checked whole before anything is written.
pub async fn restore(config: &StoreConfig, path: &Path) -> Result<SnapshotInfo> {
    let checked = path.to_owned();
    let info = tokio::task::spawn_blocking(move || verify_file(&checked))
        .await
        .map_err(|e| StoreError::Operation(format!("snapshot reader: {e}")))??;
    if info.schema_version != migrations::latest() {
        return Err(StoreError::SchemaMismatch(format!(
            "{} was made by a version of rag with store schema {}; this one has schema {}: \
             restore it with that version, then start this one on the restored store",
            path.display(),
            info.schema_version,
            migrations::latest()
        )));
    }
    let store = crate::open(config, info.vector_size, &info.embedding_model).await?;
    let present = store.backend.count(&Filter::default()).await?;
    if present > 0 {
        return Err(StoreError::Operation(format!(
            "{} holds {present} points: a snapshot is restored only into an empty store \
             (another data directory or collection)",
            store.backend.describe()
        )));
    }
    let (tx, mut rx) = mpsc::channel::<Result<Vec<NewPoint>>>(2);
    let file = path.to_owned();
    let reader = tokio::task::spawn_blocking(move || read_points(&file, tx));
    while let Some(page) = rx.recv().await {
        store.backend.upsert(page?).await?;
    }
    reader
        .await
        .map_err(|e| StoreError::Operation(format!("snapshot reader: {e}")))?;
    store.backend.flush().await?;
    store.backend.optimize().await?;
    let restored = store.backend.count(&Filter::default()).await?;
    if restored != info.points {
        return Err(StoreError::Operation(format!(
            "{}: {restored} points after restoring {} from {}",
            store.backend.describe(),
            info.points,
            path.display()
        )));
    }
    Ok(info)
}

fn write_file(
    path: &Path,
    info: HeaderInfo,
    mut pages: mpsc::Receiver<Vec<NewPoint>>,
) -> Result<SnapshotInfo> {
    let partial = partial_path(path);
    let result = (|| {
        let file = fs_err::File::create(&partial).map_err(io(&partial))?;
        let gzip = flate2::write::GzEncoder::new(BufWriter::new(file), flate2::Compression::fast());
        let mut out = Hashed::new(gzip);
        let mut points = 0u64;
        let header = Line::Header {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            info,
        };
        out.line(&header).map_err(io(&partial))?;
        while let Some(page) = pages.blocking_recv() {
            for point in page {
                out.line(&to_line(point)).map_err(io(&partial))?;
                points += 1;
            }
        }
        let blake3 = out.digest.finalize().to_hex().to_string();
        let mut gzip = out.inner;
        writeln!(gzip, "{}", json(&Line::End { points, blake3 })).map_err(io(&partial))?;
        let file = gzip
            .finish()
            .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
            .map_err(io(&partial))?;
        file.sync_all().map_err(io(&partial))?;
        let Line::Header { info, .. } = header else {
            unreachable!()
        };
        Ok(snapshot_info(info, points))
    })();
    match result {
        Ok(info) => {
            fs_err::rename(&partial, path).map_err(io(path))?;
            Ok(info)
        }
        Err(e) => {
            let _ = fs_err::remove_file(&partial);
            Err(e)
        }
    }
}

/// Reads the whole file: its header, that every line parses, the count and the digest.
fn verify_file(path: &Path) -> Result<SnapshotInfo> {
    let mut header = None;
    let mut points = 0u64;
    let mut digest = blake3::Hasher::new();
    for line in lines(path)? {
        let (text, parsed) = line?;
        match parsed {
            Line::Header {
                format,
                format_version,
                info,
            } => {
                if format != FORMAT || format_version != FORMAT_VERSION || header.is_some() {
                    return Err(corrupt(path, "not a rag snapshot of this format"));
                }
                header = Some(info);
            }
            Line::Point { .. } if header.is_some() => points += 1,
            Line::Point { .. } => return Err(corrupt(path, "a point before the header")),
            Line::End { points: n, blake3 } => {
                let info = header.ok_or_else(|| corrupt(path, "no header"))?;
                if n != points || digest.finalize().to_hex().as_str() != blake3 {
                    return Err(corrupt(path, "its digest or point count does not match"));
                }
                return Ok(snapshot_info(info, points));
            }
        }
        digest.update(text.as_bytes());
        digest.update(b"\n");
    }
    Err(corrupt(path, "it ends before its closing line (truncated)"))
}

/// Sends the points of a verified file in pages.
fn read_points(path: &Path, tx: mpsc::Sender<Result<Vec<NewPoint>>>) {
    let send = |page| tx.blocking_send(page).is_ok();
    let mut page = Vec::with_capacity(PAGE);
    let lines = match lines(path) {
        Ok(lines) => lines,
        Err(e) => {
            send(Err(e));
            return;
        }
    };
    for line in lines {
        match line {
            Ok((
                _,
                Line::Point {
                    id,
                    vectors,
                    payload,
                },
            )) => {
                let vectors = vectors
                    .into_iter()
                    .map(|(name, v)| from_stored(name, v, path))
                    .collect::<Result<_>>();
                match vectors {
                    Ok(vectors) => page.push(NewPoint {
                        id,
                        vectors,
                        payload,
                    }),
                    Err(e) => {
                        send(Err(e));
                        return;
                    }
                }
                if page.len() == PAGE && !send(Ok(std::mem::take(&mut page))) {
                    return;
                }
            }
            Ok(_) => {}
            Err(e) => {
                send(Err(e));
                return;
            }
        }
    }
    if !page.is_empty() {
        send(Ok(page));
    }
}

/// The file's lines, each with its text (for the digest) and parsed.
fn lines(path: &Path) -> Result<impl Iterator<Item = Result<(String, Line)>>> {
    let file = fs_err::File::open(path).map_err(io(path))?;
    let reader = BufReader::new(flate2::read::GzDecoder::new(BufReader::new(file)));
    let path = path.to_owned();
    Ok(reader.lines().map(move |line| {
        let text = line.map_err(|e| corrupt(&path, &format!("unreadable: {e}")))?;
        let parsed = serde_json::from_str(&text)
            .map_err(|e| corrupt(&path, &format!("a line does not parse: {e}")))?;
        Ok((text, parsed))
    }))
}

fn to_line(point: NewPoint) -> Line {
    let vectors = point
        .vectors
        .into_iter()
        .map(|v| {
            let stored = match v.vector {
                VectorData::Dense(values) => {
                    let bytes: Vec<u8> = values.iter().flat_map(|x| x.to_le_bytes()).collect();
                    StoredVector::Dense(base64::engine::general_purpose::STANDARD.encode(bytes))
                }
                VectorData::Sparse(s) => StoredVector::Sparse {
                    indices: s.indices,
                    values: s.values,
                },
            };
            (v.name, stored)
        })
        .collect();
    Line::Point {
        id: point.id,
        vectors,
        payload: point.payload,
    }
}

fn from_stored(name: String, vector: StoredVector, path: &Path) -> Result<NamedVector> {
    let vector = match vector {
        StoredVector::Dense(text) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| corrupt(path, &format!("a dense vector: {e}")))?;
            if bytes.len() % 4 != 0 {
                return Err(corrupt(path, "a dense vector of partial floats"));
            }
            VectorData::Dense(
                bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
            )
        }
        StoredVector::Sparse { indices, values } => {
            VectorData::Sparse(rag_lexical::SparseVector { indices, values })
        }
    };
    Ok(NamedVector { name, vector })
}

/// A writer that hashes every line it writes.
struct Hashed<W> {
    inner: W,
    digest: blake3::Hasher,
}

impl<W: Write> Hashed<W> {
    fn new(inner: W) -> Self {
        Self {
            inner,
            digest: blake3::Hasher::new(),
        }
    }

    fn line(&mut self, line: &Line) -> std::io::Result<()> {
        let mut text = json(line);
        text.push('\n');
        self.digest.update(text.as_bytes());
        self.inner.write_all(text.as_bytes())
    }
}

fn json(line: &Line) -> String {
    serde_json::to_string(line).expect("snapshot lines serialise")
}

fn snapshot_info(info: HeaderInfo, points: u64) -> SnapshotInfo {
    SnapshotInfo {
        points,
        schema_version: info.schema_version,
        embedding_model: info.embedding_model,
        vector_size: info.vector_size,
        source: info.source,
        created_at_ms: info.created_at_ms,
    }
}

fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".partial");
    path.with_file_name(name)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.to_owned();
    move |source| StoreError::Io { path, source }
}

fn corrupt(path: &Path, why: &str) -> StoreError {
    StoreError::Operation(format!("snapshot {}: {why}", path.display()))
}
