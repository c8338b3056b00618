//! Shared pieces of the kernel integration tests.
//!
//! - [`frame`] builds query frames and checks answer frames byte by byte.
//! - [`lab`] makes network namespaces with veth links, starts real processes in them, and
//!   tears everything down on drop, even when a test fails.

pub mod frame;
pub mod lab;

/// Path of a file under the workspace's `../shared/blocklists/`.
pub fn shared_list(name: &str) -> std::path::PathBuf {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/blocklists")
        .join(name);
    p.canonicalize().unwrap_or(p)
}
