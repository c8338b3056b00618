//! Builds the BPF program (`dnssink-ebpf`) for bpfel with the nightly toolchain and
//! bpf-linker, through aya-build; `src/bpf.rs` embeds the result.
use anyhow::{Context as _, anyhow};

fn main() -> anyhow::Result<()> {
    println!("cargo::rerun-if-env-changed=DNSSINK_NO_BPF");
    // The fuzz targets (`cargo xtask fuzz`) use the list parsers only, and build with
    // sanitizer flags that must not reach the BPF build: they get an empty object.
    if std::env::var_os("DNSSINK_NO_BPF").is_some() {
        let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("dnssink");
        std::fs::write(out, []).context("writing the empty BPF object")?;
        return Ok(());
    }
    let cargo_metadata::Metadata { packages, .. } = cargo_metadata::MetadataCommand::new()
        .no_deps()
        .exec()
        .context("cargo metadata")?;
    let ebpf = packages
        .into_iter()
        .find(|p| p.name.as_str() == "dnssink-ebpf")
        .ok_or_else(|| anyhow!("dnssink-ebpf package not found"))?;
    let root = ebpf
        .manifest_path
        .parent()
        .ok_or_else(|| anyhow!("no parent for {}", ebpf.manifest_path))?;
    // `--features bpf-log` builds the program with its aya-log lines.
    let features: &[&str] = if std::env::var_os("CARGO_FEATURE_BPF_LOG").is_some() {
        &["log"]
    } else {
        &[]
    };
    let package = aya_build::Package {
        name: ebpf.name.as_str(),
        root_dir: root.as_str(),
        features,
        ..Default::default()
    };
    aya_build::build_ebpf([package], aya_build::Toolchain::default())
        .context("building the BPF program (run `cargo xtask setup` if a tool is missing)")
}
