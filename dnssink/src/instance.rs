//! Which instance a command means, and where its files are: one [`InstanceId`] names the
//! interface in this network namespace, and owns its pin directory, its state file and its
//! control socket.
//!
//! The same interface name can be attached in several namespaces at once, so every path
//! carries the namespace:
//! - pins: `/sys/fs/bpf/dnssink/IFACE/` in the host's network namespace, `IFACE@NETNS/` in
//!   any other (NETNS is the namespace's inode). The BPF filesystem refuses names with dots,
//!   so a VLAN's `eth0.100` is pinned as `eth0:100` (interface names cannot hold a colon).
//! - state: `/run/dnssink/IFACE.NETNS`, and the control socket `/run/dnssink/IFACE.NETNS.sock`.

use std::{os::unix::fs::MetadataExt as _, path::PathBuf};

use anyhow::{Context as _, Result, bail};

use crate::{
    pin,
    state::{self, State},
};

/// The directory of the state files and control sockets.
pub const RUN_DIR: &str = "/run/dnssink";

/// An instance: an interface, in this network namespace.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct InstanceId {
    pub iface: String,
    netns: u64,
    host_netns: bool,
}

fn netns_inode(pid: &str) -> Result<u64> {
    let path = format!("/proc/{pid}/ns/net");
    Ok(std::fs::metadata(&path)
        .with_context(|| format!("reading {path}"))?
        .ino())
}

impl InstanceId {
    /// The instance on `iface` in this network namespace.
    pub fn here(iface: &str) -> Result<InstanceId> {
        let netns = netns_inode("self")?;
        Ok(InstanceId {
            iface: iface.to_string(),
            netns,
            host_netns: netns_inode("1").is_ok_and(|n| n == netns),
        })
    }

    /// Where its program link and maps are pinned.
    pub fn pin_dir(&self) -> PathBuf {
        let name = self.iface.replace('.', ":");
        if self.host_netns {
            PathBuf::from(pin::ROOT).join(name)
        } else {
            PathBuf::from(pin::ROOT).join(format!("{name}@{}", self.netns))
        }
    }

    /// Its state file.
    pub fn state_path(&self) -> PathBuf {
        PathBuf::from(RUN_DIR).join(format!("{}.{}", self.iface, self.netns))
    }

    /// Its daemon's control socket.
    pub fn socket(&self) -> PathBuf {
        PathBuf::from(format!("{}.sock", self.state_path().display()))
    }

    /// Whether its program outlives its daemon: a kept link is pinned.
    pub fn is_kept(&self) -> bool {
        self.pin_dir().join(pin::LINK).exists()
    }

    /// Its state file, whether its daemon runs or not.
    pub fn state(&self) -> Result<State> {
        State::load(&self.state_path())
            .with_context(|| format!("no dnssink is attached to {} here", self.iface))
    }

    /// Its state, with its daemon running.
    pub fn running(&self) -> Result<State> {
        let st = self.state()?;
        if !state::alive(st.pid) {
            bail!(
                "the dnssink attached to {} (PID {}) is not running",
                self.iface,
                st.pid
            );
        }
        Ok(st)
    }

    /// Whether it is attached: a daemon runs for it, or its program is kept.
    pub fn is_attached(&self) -> bool {
        self.state().is_ok_and(|s| state::alive(s.pid)) || self.is_kept()
    }

    /// The instances attached in this network namespace.
    pub fn all() -> Result<Vec<InstanceId>> {
        let suffix = format!(".{}", netns_inode("self")?);
        let mut found = Vec::new();
        if let Ok(dir) = std::fs::read_dir(RUN_DIR) {
            for e in dir.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(iface) = name.strip_suffix(&suffix) {
                    let id = InstanceId::here(iface)?;
                    if id.is_attached() {
                        found.push(id);
                    }
                }
            }
        }
        found.sort();
        Ok(found)
    }

    /// The instance on `iface`, or without one the only instance in this namespace.
    pub fn named_or_only(iface: Option<&str>) -> Result<InstanceId> {
        if let Some(i) = iface {
            return InstanceId::here(i);
        }
        let mut found = InstanceId::all()?;
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => bail!("no dnssink is attached here"),
            _ => bail!(
                "several instances are attached ({}): name one",
                found
                    .iter()
                    .map(|i| i.iface.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// Removes its state file and socket.
    pub fn remove_state(&self) {
        for p in [self.state_path(), self.socket()] {
            let _ = std::fs::remove_file(p);
        }
    }

    /// The pin of map `name`.
    pub fn map_pin(&self, name: &str) -> PathBuf {
        pin::map(&self.pin_dir(), name)
    }
}

impl std::fmt::Display for InstanceId {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(&self.iface)
    }
}
