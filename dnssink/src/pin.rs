//! The BPF filesystem, where an instance pins its program link and maps so that other
//! commands (`stats`, `detach`, `query`) and the next start (`--on-exit keep`) find them, in
//! its `InstanceId::pin_dir`. Every file there has mode 0600.

use std::{
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, bail};

/// The root of every instance's pins.
pub const ROOT: &str = "/sys/fs/bpf/dnssink";
/// The pinned link, present when the program outlives its daemon (`--on-exit keep`).
pub const LINK: &str = "link";
/// The pinned TCX link of the TCP program, beside [`LINK`].
pub const TCP_LINK: &str = "tcp-link";

const BPF_FS_MAGIC: i64 = 0xcafe4a11;

/// The pin of map `name` in `dir`.
pub fn map(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

fn is_bpffs(path: &str) -> bool {
    let Ok(c) = std::ffi::CString::new(path) else {
        return false;
    };
    // SAFETY: statfs into a zeroed struct that outlives the call.
    unsafe {
        let mut s: libc::statfs = std::mem::zeroed();
        libc::statfs(c.as_ptr(), &mut s) == 0 && s.f_type as i64 == BPF_FS_MAGIC
    }
}

/// Makes `dir` on the BPF filesystem, mounting it at /sys/fs/bpf first if nothing is there (as
/// systemd does at boot).
pub fn create(dir: &Path) -> Result<()> {
    if !is_bpffs("/sys/fs/bpf") {
        let src = c"bpf";
        let target = c"/sys/fs/bpf";
        // SAFETY: mount(2) with NUL-terminated strings.
        let r = unsafe {
            libc::mount(
                src.as_ptr(),
                target.as_ptr(),
                src.as_ptr(),
                0,
                c"mode=0700".as_ptr().cast(),
            )
        };
        if r != 0 {
            bail!(
                "mounting the BPF filesystem at /sys/fs/bpf: {}",
                std::io::Error::last_os_error()
            );
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("setting the mode of {}", dir.display()))
}

/// Sets mode 0600 on every pin in `dir`.
pub fn restrict(dir: &Path) -> Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let p = e?.path();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("setting the mode of {}", p.display()))?;
    }
    Ok(())
}

/// Removes `dir` and its pins: a pinned link goes with its pin, unless a process holds it.
pub fn remove(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", dir.display())),
    }
}
