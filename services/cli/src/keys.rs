//! `rag keys new`: makes an API key, shows it once, and gives the configuration its digest.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use rag_auth::Role;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a new key: the key is printed once (give it to the client); the service is
    /// configured with its SHA-256 only.
    New(NewArgs),
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The key's name, logged with every call it makes.
    #[arg(long)]
    id: String,
    /// reader (Search, Ask), writer (+ IngestDocument, DeleteDocument) or admin (+ statistics).
    #[arg(long)]
    role: Role,
    /// Append the key's entry to this keys file (`auth.keys_file`; created, owner-only) instead
    /// of printing an `[[auth.keys]]` table to paste into the configuration.
    #[arg(long)]
    keys_file: Option<PathBuf>,
    /// The tenant the key acts in (it reaches that tenant's documents only).
    #[arg(long, default_value = rag_store::DEFAULT_TENANT)]
    tenant: String,
    /// Groups whose restricted documents the key may read and write, comma-separated; "*":
    /// every document of the tenant. None: only documents open to everyone.
    #[arg(long, value_delimiter = ',')]
    groups: Vec<String>,
    /// A trusted front end that passes on each asking user's groups (`x-rag-groups`).
    #[arg(long)]
    forward_groups: bool,
}

pub fn run(command: KeysCommand) -> anyhow::Result<()> {
    let KeysCommand::New(args) = command;
    anyhow::ensure!(
        !args.id.trim().is_empty()
            && args
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
        "--id: letters, digits, '-', '_' and '.' only"
    );
    anyhow::ensure!(
        rag_store::valid_name(&args.tenant),
        "--tenant: {}",
        rag_store::NAME_RULE
    );
    let groups: Vec<&str> = args.groups.iter().map(|g| g.trim()).collect();
    anyhow::ensure!(
        groups == [rag_auth::ALL_GROUPS] || groups.iter().all(|g| rag_store::valid_name(g)),
        "--groups: names of {}, or \"*\" alone",
        rag_store::NAME_RULE
    );
    let (key, digest) = rag_auth::generate();
    let entry = |table: &str| {
        let groups: Vec<String> = groups.iter().map(|g| format!("\"{g}\"")).collect();
        format!(
            "[[{table}]]\nid = \"{}\"\nsha256 = \"{digest}\"\nrole = \"{}\"\ntenant = \"{}\"\n\
             groups = [{}]\nforward_groups = {}\n",
            args.id,
            args.role.name(),
            args.tenant,
            groups.join(", "),
            args.forward_groups,
        )
    };
    match &args.keys_file {
        Some(path) => {
            let mut file = open_private(path)?;
            writeln!(file, "{}", entry("keys"))
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("rag: key {:?} added to {}", args.id, path.display());
        }
        None => {
            eprintln!("rag: add this to the service's configuration:");
            eprintln!();
            eprint!("{}", entry("auth.keys"));
            eprintln!();
        }
    }
    eprintln!("rag: the key (shown once; clients send it with --api-key or RAG_API_KEY):");
    println!("{key}");
    Ok(())
}

/// Opens `path` for appending, creating it readable by its owner only.
fn open_private(path: &std::path::Path) -> anyhow::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))
}
