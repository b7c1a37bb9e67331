//! `rag snapshot create|restore`: backups of the configured store, embedded or server, in one
//! file format (see [`rag_store::snapshot`]).

use std::path::PathBuf;

use clap::Subcommand;

use crate::config::Config;
use crate::ingest::explain_store_error;

#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Write every point of the store (all tenants) to FILE. The embedded store is read by one
    /// process at a time: stop the service first (the server backend needs no stop).
    Create { file: PathBuf },
    /// Fill an empty store (the configured data directory or collection) from FILE, checked
    /// whole first, and build its search index.
    Restore { file: PathBuf },
}

pub async fn run(config: &Config, command: SnapshotCommand) -> anyhow::Result<()> {
    let (verb, info) = match command {
        SnapshotCommand::Create { file } => {
            let store = rag_store::open_existing(&config.store())
                .await
                .map_err(explain_store_error)?;
            let info = store.snapshot(&file).await?;
            (format!("wrote {}", file.display()), info)
        }
        SnapshotCommand::Restore { file } => {
            let info = rag_store::snapshot::restore(&config.store(), &file)
                .await
                .map_err(explain_store_error)?;
            (format!("restored {}", file.display()), info)
        }
    };
    println!(
        "{verb}: {} points, embedding model {} ({} dimensions), store schema {}, from {}",
        info.points, info.embedding_model, info.vector_size, info.schema_version, info.source
    );
    Ok(())
}
