//! Payload keys, named once: every filter, scroll and index refers to these, so a renamed
//! [`ChunkPayload`](crate::ChunkPayload) field cannot leave a query asking for the old key. A
//! test checks them against the serialised payload and the indexes in `migrations/`.

pub const DOC_ID: &str = "doc_id";
pub const SOURCE: &str = "source";
pub const ROOT: &str = "root";
pub const DOC_HASH: &str = "doc_hash";
pub const CHUNK_INDEX: &str = "chunk_index";
pub const CHUNK_COUNT: &str = "chunk_count";
pub const CHUNK_HASH: &str = "chunk_hash";
pub const GROUPS: &str = "groups";
/// Not a [`ChunkPayload`](crate::ChunkPayload) field: the store writes its own tenant into
/// every point and filters every operation by it.
pub const TENANT: &str = "tenant";
/// Not a [`ChunkPayload`](crate::ChunkPayload) field: added on write, see
/// [`crate::point::stored_payload`].
pub const PATH_PREFIXES: &str = "path_prefixes";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrations::{self, Step};

    #[test]
    fn names_match_the_stored_payload_and_the_indexes() {
        let payload = crate::point::tests::sample_payload("hr/leave.md");
        let stored = crate::point::stored_payload(&payload, "t");
        for field in [
            DOC_ID,
            SOURCE,
            ROOT,
            DOC_HASH,
            CHUNK_INDEX,
            CHUNK_COUNT,
            CHUNK_HASH,
            PATH_PREFIXES,
            GROUPS,
            TENANT,
        ] {
            assert!(stored.contains_key(field), "{field} is not a stored key");
        }
        let indexed: Vec<String> = migrations::all()
            .unwrap()
            .into_iter()
            .flat_map(|m| m.steps)
            .filter_map(|s| match s {
                Step::CreatePayloadIndex { field, .. } => Some(field),
                _ => None,
            })
            .collect();
        // Every key a filter uses is indexed, so no filter scans the whole collection.
        for field in [
            DOC_ID,
            SOURCE,
            ROOT,
            DOC_HASH,
            CHUNK_INDEX,
            CHUNK_HASH,
            PATH_PREFIXES,
            GROUPS,
            TENANT,
        ] {
            assert!(indexed.iter().any(|f| f == field), "{field} has no index");
        }
    }
}
