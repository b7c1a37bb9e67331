//! The migration driver, for every backend: reads the recorded schema, applies the pending
//! migrations in order, records progress after each, and refuses a store that does not fit the
//! configured model.

use crate::backend::Backend;
use crate::migrations::{self, Target};
use crate::schema::SchemaRecord;
use crate::{Result, StoreError};

/// Brings `backend` up to the latest schema for `target`. Returns the version it is at.
pub(crate) async fn migrate(backend: &dyn Backend, target: &Target) -> Result<u32> {
    let recorded = backend.schema().await?;
    if let Some(record) = &recorded {
        record.check(target, &backend.describe())?;
    }
    let applied = recorded.as_ref().map_or(0, |r| r.version);
    if applied > migrations::latest() {
        return Err(StoreError::SchemaMismatch(format!(
            "{} is at schema version {applied}, newer than this build knows ({})",
            backend.describe(),
            migrations::latest()
        )));
    }
    for migration in migrations::pending(applied)? {
        for step in &migration.steps {
            backend.apply(&migration.name, step, target).await?;
        }
        // Durable before recorded: a recorded version promises that its steps survived.
        backend.flush().await?;
        backend
            .set_schema(&SchemaRecord::new(migration.version, target))
            .await?;
        tracing::info!(migration = %migration.name, store = %backend.describe(), "applied migration");
    }

    let Some(record) = backend.schema().await? else {
        return Err(StoreError::Migration {
            name: "migrations/".into(),
            reason: "no migration creates the collection".into(),
        });
    };
    record.check(target, &backend.describe())?;
    let dense = migrations::dense_vector_name()?;
    let size = backend.dense_size(&dense).await?;
    if size != Some(target.vector_size) {
        return Err(StoreError::SchemaMismatch(format!(
            "{}: stored vectors {dense:?} have {size:?} dimensions, the model makes {}",
            backend.describe(),
            target.vector_size
        )));
    }
    Ok(record.version)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::backend::{
        Filter, NewPoint, Page, Payload, PointKey, QueryRequest, Scored, ScrollRequest,
    };
    use crate::migrations::Step;

    /// Records what the driver asks for; only the schema primitives do anything.
    #[derive(Default)]
    struct Fake {
        record: Mutex<Option<SchemaRecord>>,
        dense_size: Option<usize>,
        log: Mutex<Vec<String>>,
    }

    impl Fake {
        fn at(version: u32, target: &Target) -> Self {
            Self {
                record: Mutex::new(Some(SchemaRecord::new(version, target))),
                dense_size: Some(target.vector_size),
                ..Self::default()
            }
        }

        fn log(&self) -> Vec<String> {
            self.log.lock().unwrap().clone()
        }
    }

    #[async_trait::async_trait]
    impl Backend for Fake {
        fn exclusive(&self) -> bool {
            true
        }

        fn describe(&self) -> String {
            "fake".into()
        }
        async fn upsert(&self, _: Vec<NewPoint>) -> Result<()> {
            unimplemented!()
        }
        async fn query(&self, _: QueryRequest) -> Result<Vec<Scored>> {
            unimplemented!()
        }
        async fn payloads(&self, _: Vec<PointKey>) -> Result<Vec<(PointKey, Payload)>> {
            unimplemented!()
        }
        async fn scroll(&self, _: ScrollRequest) -> Result<Page> {
            unimplemented!()
        }
        async fn count(&self, _: &Filter) -> Result<u64> {
            unimplemented!()
        }
        async fn delete(&self, _: &Filter) -> Result<()> {
            unimplemented!()
        }
        async fn schema(&self) -> Result<Option<SchemaRecord>> {
            Ok(self.record.lock().unwrap().clone())
        }
        async fn set_schema(&self, record: &SchemaRecord) -> Result<()> {
            self.log
                .lock()
                .unwrap()
                .push(format!("record {}", record.version));
            *self.record.lock().unwrap() = Some(record.clone());
            Ok(())
        }
        async fn apply(&self, migration: &str, step: &Step, _: &Target) -> Result<()> {
            let op = match step {
                Step::CreateCollection { .. } => "collection",
                Step::CreatePayloadIndex { .. } => "index",
                Step::CreateSparseVector { .. } => "sparse",
                Step::FillMissing { .. } => "fill",
            };
            self.log.lock().unwrap().push(format!("{migration} {op}"));
            Ok(())
        }
        async fn dense_size(&self, _: &str) -> Result<Option<usize>> {
            Ok(self.dense_size)
        }
        async fn flush(&self) -> Result<()> {
            self.log.lock().unwrap().push("flush".into());
            Ok(())
        }

        async fn optimize(&self) -> Result<bool> {
            unreachable!("migrations never optimise")
        }

        async fn drop_collection(&self) -> Result<()> {
            unreachable!("migrations never drop the collection")
        }

        async fn export(
            &self,
            _: Option<crate::backend::PointKey>,
            _: usize,
        ) -> Result<crate::backend::ExportPage> {
            unreachable!("migrations never export")
        }
    }

    fn target() -> Target {
        Target {
            vector_size: 4,
            embedding_model: "m".into(),
        }
    }

    #[tokio::test]
    async fn applies_pending_migrations_and_records_each_after_a_flush() {
        let fake = Fake::at(1, &target());
        assert_eq!(
            migrate(&fake, &target()).await.unwrap(),
            migrations::latest()
        );
        assert_eq!(
            fake.log(),
            [
                "0002_chunk_hash.toml index",
                "flush",
                "record 2",
                "0003_lexical.toml sparse",
                "flush",
                "record 3",
                "0004_tenants.toml index",
                "0004_tenants.toml index",
                "0004_tenants.toml fill",
                "0004_tenants.toml fill",
                "flush",
                "record 4",
            ]
        );
    }

    #[tokio::test]
    async fn a_fresh_store_starts_with_the_collection() {
        let fake = Fake {
            dense_size: Some(4),
            ..Fake::default()
        };
        migrate(&fake, &target()).await.unwrap();
        assert_eq!(fake.log()[0], "0001_chunks.toml collection");
        assert_eq!(
            fake.record.lock().unwrap().clone(),
            Some(SchemaRecord::new(migrations::latest(), &target()))
        );
    }

    #[tokio::test]
    async fn refuses_another_model_a_newer_schema_and_another_vector_size() {
        let other = Target {
            vector_size: 8,
            embedding_model: "other".into(),
        };
        let fake = Fake::at(1, &other);
        let err = migrate(&fake, &target()).await.unwrap_err();
        assert!(matches!(err, StoreError::SchemaMismatch(_)), "{err}");
        assert!(err.to_string().contains("other"), "{err}");
        assert!(fake.log().is_empty(), "nothing applied to a refused store");

        let fake = Fake::at(migrations::latest() + 1, &target());
        let err = migrate(&fake, &target()).await.unwrap_err();
        assert!(err.to_string().contains("newer than this build"), "{err}");

        let fake = Fake {
            dense_size: Some(3),
            ..Fake::at(migrations::latest(), &target())
        };
        let err = migrate(&fake, &target()).await.unwrap_err();
        assert!(matches!(err, StoreError::SchemaMismatch(_)), "{err}");
    }
}
