//! A migration step applied to a collection.

use std::collections::HashMap;

use qdrant_client::qdrant::{
    CreateFieldIndexCollectionBuilder, FieldType, KeywordIndexParamsBuilder,
    SetPayloadPointsBuilder,
};

use super::ServerBackend;
use super::convert::{to_filter, to_value};
use crate::backend::{Condition, Filter};
use crate::migrations::{IndexKind, Step, Target};
use crate::{Result, StoreError};

impl ServerBackend {
    pub(super) async fn apply_step(
        &self,
        migration: &str,
        step: &Step,
        target: &Target,
    ) -> Result<()> {
        let missing = |what: &str| StoreError::before_collection(migration, what);
        match step {
            Step::CreateCollection {
                dense_vector,
                distance,
            } => {
                self.create_collection(dense_vector, *distance, target)
                    .await
            }
            Step::CreatePayloadIndex {
                field,
                kind,
                is_tenant,
            } => {
                if !self.exists().await? {
                    return Err(missing("payload index"));
                }
                let field_type = match kind {
                    IndexKind::Keyword => FieldType::Keyword,
                    IndexKind::Integer => FieldType::Integer,
                };
                let mut request = CreateFieldIndexCollectionBuilder::new(
                    self.collection.as_str(),
                    field.as_str(),
                    field_type,
                )
                .wait(true);
                if *is_tenant {
                    request = request
                        .field_index_params(KeywordIndexParamsBuilder::default().is_tenant(true));
                }
                let request = request.build();
                self.call(format!("{migration}: index {field}"), |c| {
                    let request = request.clone();
                    async move { c.create_field_index(request).await }
                })
                .await?;
                Ok(())
            }
            Step::FillMissing { field, value } => {
                if !self.exists().await? {
                    return Err(missing("payload field"));
                }
                let payload = HashMap::from([(field.clone(), to_value(value.clone()))]);
                let missing = to_filter(&Filter::must(Condition::IsEmpty {
                    field: field.clone(),
                }))
                .expect("a filter with a condition");
                let request = SetPayloadPointsBuilder::new(self.collection.as_str(), payload)
                    .points_selector(missing)
                    .wait(true)
                    .build();
                self.call(format!("{migration}: fill {field}"), |c| {
                    let request = request.clone();
                    async move { c.set_payload(request).await }
                })
                .await?;
                Ok(())
            }
            Step::CreateSparseVector { name, modifier } => {
                if !self.exists().await? {
                    return Err(missing("sparse vector"));
                }
                self.create_sparse_vector(name, *modifier)
                    .await
                    .map_err(|e| self.error(format!("{migration}: sparse vector {name}"), e))
            }
        }
    }
}
