//! The server's generations: collections `{name}-{stamp}` behind the alias `name` (see
//! [`crate::generation`]).

use std::time::Duration;

use super::{Named, ServerBackend};
use crate::backend::Backend;
use crate::generation::{Generation, foreign};
use crate::{Layout, Result, StoreError};

pub(crate) struct Generations {
    pub(crate) urls: Vec<String>,
    /// The configured name: an alias, or a collection made before aliases.
    pub(crate) collection: String,
    pub(crate) api_key: Option<String>,
    pub(crate) timeout: Duration,
    pub(crate) layout: Layout,
}

impl Generations {
    async fn connect_exact(&self, collection: &str) -> Result<ServerBackend> {
        ServerBackend::connect_exact(
            &self.urls,
            collection,
            self.api_key.as_deref(),
            self.timeout,
            self.layout,
        )
        .await
    }
}

#[async_trait::async_trait]
impl crate::generation::Generations for Generations {
    async fn current(&self) -> Result<Option<Generation>> {
        let collection = &self.collection;
        let server = self.connect_exact(collection).await?;
        Ok(match server.named(collection).await? {
            Named::Alias(target) => Some(Generation::Collection(target)),
            Named::Collection => Some(Generation::Collection(collection.clone())),
            Named::Nothing => None,
        })
    }

    async fn create(&self, stamp: &str) -> Result<(Generation, Box<dyn Backend>)> {
        let name = format!("{}-{stamp}", self.collection);
        let backend = self.connect_exact(&name).await?;
        if !matches!(backend.named(&name).await?, Named::Nothing) {
            return Err(StoreError::Operation(format!(
                "collection or alias {name} exists already"
            )));
        }
        Ok((Generation::Collection(name), Box::new(backend)))
    }

    /// Points the alias at `next` in one request, which the server applies atomically.
    async fn switch(&self, next: &Generation, replace_collection: bool) -> Result<()> {
        let Generation::Collection(next) = next else {
            return Err(foreign(next));
        };
        let collection = &self.collection;
        let server = self.connect_exact(next).await?;
        if let Named::Collection = server.named(collection).await? {
            if !replace_collection {
                return Err(StoreError::Operation(format!(
                    "{collection} is a collection (made before stores were aliases), so it \
                     cannot be switched while services use it: stop them and switch with \
                     the old collection deleted (rag reindex --drop-old), or keep \
                     store.collection = {next:?} for the new services"
                )));
            }
            server.delete_collection(collection).await?;
        }
        server.point_alias(collection).await
    }

    async fn all(&self) -> Result<Vec<Generation>> {
        let collection = &self.collection;
        let server = self.connect_exact(collection).await?;
        // Only `{name}-{digits}`: another store's collection may share the prefix.
        let prefix = format!("{collection}-");
        let mut names: Vec<String> = server
            .collections_named(&prefix)
            .await?
            .into_iter()
            .filter(|n| {
                let stamp = &n[prefix.len()..];
                !stamp.is_empty() && stamp.bytes().all(|b| b.is_ascii_digit())
            })
            .collect();
        names.sort();
        Ok(names.into_iter().map(Generation::Collection).collect())
    }

    async fn remove(&self, old: &Generation) -> Result<()> {
        let Generation::Collection(name) = old else {
            return Err(foreign(old));
        };
        self.connect_exact(name)
            .await?
            .delete_collection(name)
            .await
    }

    fn is_the_name(&self, generation: &Generation) -> bool {
        matches!(generation, Generation::Collection(c) if *c == self.collection)
    }
}
