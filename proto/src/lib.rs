//! Generated types and service stubs for the `rag.v1` gRPC API.

pub mod v1 {
    tonic::include_proto!("rag.v1");

    /// Encoded file descriptor set, for gRPC server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("rag_v1_descriptor");
}
