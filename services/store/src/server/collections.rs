//! Collections and aliases: what a name is on the server, and the collection behind it.

use std::collections::HashMap;

use qdrant_client::QdrantError;
use qdrant_client::qdrant::{
    CollectionConfig, CreateAliasBuilder, CreateCollectionBuilder, CreateVectorNameRequestBuilder,
    Distance, Modifier, SparseVectorCreationConfigBuilder, VectorParamsBuilder, VectorParamsMap,
    VectorsConfig, vectors_config,
};

use super::ServerBackend;
use super::schema::{from_metadata, to_metadata};
use crate::backend::Backend;
use crate::migrations::{self, SparseModifier, Target};
use crate::schema::SchemaRecord;
use crate::{Result, StoreError};

/// Suffix of the first collection behind a new store's name: every store made since aliases
/// came is an alias over a collection, so that `rag reindex` can switch it in one request.
pub(super) const FIRST_GENERATION: &str = "-0";

/// What a configured name is on the server.
pub(crate) enum Named {
    /// An alias of this collection.
    Alias(String),
    /// A collection of that name (a store made before aliases).
    Collection,
    Nothing,
}

impl ServerBackend {
    /// What `name` is on the server now.
    pub(crate) async fn named(&self, name: &str) -> Result<Named> {
        let aliases = self
            .call("list aliases", |c| async move { c.list_aliases().await })
            .await?
            .aliases;
        if let Some(alias) = aliases.into_iter().find(|a| a.alias_name == name) {
            return Ok(Named::Alias(alias.collection_name));
        }
        // Asked after the aliases: the server answers `true` for an alias too.
        let exists = self
            .call("collection exists", |c| async move {
                c.collection_exists(name).await
            })
            .await?;
        Ok(if exists {
            Named::Collection
        } else {
            Named::Nothing
        })
    }

    /// Points alias `name` at this backend's collection, in one request: the server applies
    /// it atomically, replacing the alias if it pointed elsewhere.
    pub(crate) async fn point_alias(&self, name: &str) -> Result<()> {
        let collection = self.collection.as_str();
        self.call(format!("point alias {name}"), |c| async move {
            c.create_alias(CreateAliasBuilder::new(collection, name))
                .await
        })
        .await?;
        Ok(())
    }

    /// Deletes collection `name` (not through an alias: the server ignores that).
    pub(crate) async fn delete_collection(&self, name: &str) -> Result<()> {
        self.call(format!("delete collection {name}"), |c| async move {
            c.delete_collection(name).await
        })
        .await?;
        Ok(())
    }

    /// Collections whose names start with `prefix`.
    pub(crate) async fn collections_named(&self, prefix: &str) -> Result<Vec<String>> {
        Ok(self
            .call(
                "list collections",
                |c| async move { c.list_collections().await },
            )
            .await?
            .collections
            .into_iter()
            .map(|c| c.name)
            .filter(|n| n.starts_with(prefix))
            .collect())
    }

    pub(super) async fn exists(&self) -> Result<bool> {
        let collection = self.collection.as_str();
        self.call("collection exists", |c| async move {
            c.collection_exists(collection).await
        })
        .await
    }

    pub(super) async fn collection_config(&self) -> Result<CollectionConfig> {
        let collection = self.collection.as_str();
        self.call("collection info", |c| async move {
            c.collection_info(collection).await
        })
        .await?
        .result
        .and_then(|info| info.config)
        .ok_or_else(|| {
            StoreError::Operation(format!(
                "{}: collection info without a config",
                self.describe()
            ))
        })
    }

    /// Creates the collection with a schema record at version 0, so that a crash before the
    /// first migration completes leaves a collection this code recognises and finishes.
    pub(super) async fn create_collection(
        &self,
        dense_vector: &str,
        distance: migrations::Distance,
        target: &Target,
    ) -> Result<()> {
        if self.exists().await? {
            // A crash may have come between creating the collection and naming it.
            return self.name_new_collection().await;
        }
        let distance = match distance {
            migrations::Distance::Cosine => Distance::Cosine,
            migrations::Distance::Dot => Distance::Dot,
            migrations::Distance::Euclid => Distance::Euclid,
        };
        let size = u64::try_from(target.vector_size).map_err(|_| {
            StoreError::SchemaMismatch(format!("vector size {} is too large", target.vector_size))
        })?;
        let vectors = VectorsConfig {
            config: Some(vectors_config::Config::ParamsMap(VectorParamsMap {
                map: HashMap::from([(
                    dense_vector.to_owned(),
                    VectorParamsBuilder::new(size, distance).build(),
                )]),
            })),
        };
        // The builder's `metadata` takes serde_json values only with qdrant-client's `serde`
        // feature; the request's field takes them as they are.
        let mut builder =
            CreateCollectionBuilder::new(self.collection.as_str()).vectors_config(vectors);
        if let Some(n) = self.layout.shards {
            builder = builder.shard_number(n);
        }
        if let Some(n) = self.layout.replication_factor {
            builder = builder.replication_factor(n);
        }
        if let Some(n) = self.layout.write_consistency {
            builder = builder.write_consistency_factor(n);
        }
        let mut request = builder.build();
        request.metadata = to_metadata(&SchemaRecord::new(0, target));

        let created = self
            .peers
            .call(|c| {
                let request = request.clone();
                async move { c.create_collection(request).await }
            })
            .await;
        if let Err(e) = created {
            // Another process may have created it since we looked: fine if it is ours and fits.
            return match self.read_schema().await? {
                Some(r) => r.check(target, &self.describe()),
                None => Err(self.error("create collection", e)),
            };
        }
        match from_metadata(&self.collection_config().await?.metadata) {
            Ok(Some(_)) => self.name_new_collection().await,
            _ => Err(StoreError::SchemaMismatch(format!(
                "{}: the server did not keep the collection metadata that records the schema; \
                 Qdrant 1.16 or newer is needed",
                self.describe()
            ))),
        }
    }

    /// Puts the configured name on a collection this process created for a new store.
    pub(super) async fn name_new_collection(&self) -> Result<()> {
        match &self.alias {
            Some(name) => self.point_alias(name).await,
            None => Ok(()),
        }
    }

    /// Adds the sparse vector `name` unless a crashed earlier attempt already did.
    pub(super) async fn create_sparse_vector(
        &self,
        name: &str,
        modifier: SparseModifier,
    ) -> std::result::Result<(), QdrantError> {
        let collection = self.collection.as_str();
        let config = self
            .peers
            .call(|c| async move { c.collection_info(collection).await })
            .await?;
        let present = config
            .result
            .and_then(|info| info.config)
            .and_then(|c| c.params)
            .and_then(|p| p.sparse_vectors_config)
            .is_some_and(|s| s.map.contains_key(name));
        if present {
            return Ok(());
        }
        let modifier = match modifier {
            SparseModifier::None => Modifier::None,
            SparseModifier::Idf => Modifier::Idf,
        };
        let request = CreateVectorNameRequestBuilder::new(
            collection,
            name,
            SparseVectorCreationConfigBuilder::new().modifier(modifier as i32),
        )
        .wait(true)
        .build();
        self.peers
            .call(|c| {
                let request = request.clone();
                async move { c.create_vector_name(request).await }
            })
            .await?;
        Ok(())
    }
}
