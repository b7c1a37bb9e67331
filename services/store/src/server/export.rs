//! Every point of the collection, page by page, for backups and rebuilds.

use qdrant_client::qdrant::{ScrollPointsBuilder, vector_output, vectors_output};

use super::ServerBackend;
use super::convert::{to_json_map, to_point_id};
use crate::backend::{Backend, ExportPage, NamedVector, NewPoint, PointKey, VectorData};
use crate::{Result, StoreError};

impl ServerBackend {
    pub(super) async fn export_page(
        &self,
        offset: Option<PointKey>,
        limit: usize,
    ) -> Result<ExportPage> {
        let mut scroll = ScrollPointsBuilder::new(self.collection.as_str())
            .limit(u32::try_from(limit).unwrap_or(u32::MAX))
            .with_payload(true)
            .with_vectors(true);
        if let Some(offset) = offset {
            scroll = scroll.offset(to_point_id(offset));
        }
        let scroll = scroll.build();
        let page = self
            .call("export", |c| {
                let scroll = scroll.clone();
                async move { c.scroll(scroll).await }
            })
            .await?;
        let next = page
            .next_page_offset
            .map(|id| self.point_key(id))
            .transpose()?;
        let points = page
            .result
            .into_iter()
            .map(|p| {
                let id = match p.id.map(|id| self.point_key(id)).transpose()? {
                    Some(PointKey::Uuid(id)) => id,
                    other => {
                        return Err(StoreError::Operation(format!(
                            "{}: point {other:?} has no UUID; rag writes only UUIDs",
                            self.describe()
                        )));
                    }
                };
                let vectors = match p.vectors.and_then(|v| v.vectors_options) {
                    Some(vectors_output::VectorsOptions::Vectors(named)) => named
                        .vectors
                        .into_iter()
                        .filter_map(|(name, vector)| {
                            let vector = match vector.into_vector() {
                                vector_output::Vector::Dense(v) => VectorData::Dense(v.data),
                                vector_output::Vector::Sparse(v) => {
                                    VectorData::Sparse(rag_lexical::SparseVector {
                                        indices: v.indices,
                                        values: v.values,
                                    })
                                }
                                vector_output::Vector::MultiDense(_) => return None,
                            };
                            Some(NamedVector { name, vector })
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                Ok(NewPoint {
                    id,
                    vectors,
                    payload: to_json_map(p.payload),
                })
            })
            .collect::<Result<_>>()?;
        Ok(ExportPage { points, next })
    }
}
