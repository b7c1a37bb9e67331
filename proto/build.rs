use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    println!("cargo:rerun-if-changed=rag/v1/rag.proto");
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("rag_v1_descriptor.bin"))
        .compile_protos(&["rag/v1/rag.proto"], &["."])?;
    Ok(())
}
