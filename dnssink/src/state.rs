//! What a running daemon leaves for other commands (`reload`, `query`, `status`, `log`): its
//! PID, its arguments, what it loaded and the result of its last reload, as JSON in
//! `/run/dnssink/`; and its control socket beside it.
//!
//! The file is named after the interface and the network namespace, since the same interface
//! name can be attached in several namespaces at once.

use std::{
    io::Write as _,
    os::unix::fs::{MetadataExt as _, PermissionsExt as _},
    path::PathBuf,
    time::{Duration, Instant, SystemTime},
};

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

use crate::{
    lists::{Format, Role},
    plan::{OnExit, Plan},
};

/// Directory of the state files.
pub const DIR: &str = "/run/dnssink";

/// A list as it was last loaded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListState {
    pub path: String,
    pub role: Role,
    pub format: Format,
    pub rules: usize,
    /// When the file was last changed (seconds since the epoch).
    pub modified: u64,
}

/// A running (or kept) instance, as its state file describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    pub pid: u32,
    /// What it runs.
    pub plan: Plan,
    /// When it started (seconds since the epoch).
    pub started: u64,
    /// native or generic.
    pub mode: String,
    pub program_id: u32,
    pub on_exit: OnExit,
    /// Rules in the live table, canaries included.
    pub rules: usize,
    pub lists: Vec<ListState>,
    /// When the live rules were loaded.
    pub loaded: u64,
    /// How many reloads it has done, and how the last one went and when.
    pub reloads: u64,
    pub last_reload: String,
    pub last_reload_time: u64,
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn netns_id() -> Result<u64> {
    Ok(std::fs::metadata("/proc/self/ns/net")
        .context("reading /proc/self/ns/net")?
        .ino())
}

/// The state file of `iface` in this network namespace.
pub fn path(iface: &str) -> Result<PathBuf> {
    Ok(PathBuf::from(DIR).join(format!("{iface}.{}", netns_id()?)))
}

/// The control socket of the daemon attached to `iface` in this network namespace.
pub fn socket(iface: &str) -> Result<PathBuf> {
    Ok(PathBuf::from(format!("{}.sock", path(iface)?.display())))
}

/// The interfaces with a state file in this network namespace.
pub fn instances() -> Result<Vec<String>> {
    let suffix = format!(".{}", netns_id()?);
    let mut found = Vec::new();
    if let Ok(dir) = std::fs::read_dir(DIR) {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(iface) = name.strip_suffix(&suffix) {
                found.push(iface.to_string());
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Whether process `pid` runs: it exists, and has not ended as a zombie that its parent has
/// yet to reap.
pub fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the PID exists.
    if pid == 0 || unsafe { libc::kill(pid as i32, 0) } != 0 {
        return false;
    }
    // The state is the field after the command name, which is in parentheses.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(true)
}

impl State {
    /// Writes the state of `iface` (atomically: readers see the old file or the new one).
    pub fn write(&self, iface: &str) -> Result<()> {
        std::fs::create_dir_all(DIR).with_context(|| format!("creating {DIR}"))?;
        let path = path(iface)?;
        let tmp = PathBuf::from(format!("{}.tmp", path.display()));
        let mut f =
            std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(serde_json::to_string_pretty(self)?.as_bytes())?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))
    }

    /// The state file of `iface`, whether its daemon runs or not.
    pub fn load(iface: &str) -> Result<State> {
        let path = path(iface)?;
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "no dnssink is attached to {iface} here (no {})",
                path.display()
            )
        })?;
        serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))
    }

    /// The state of the instance attached to `iface` in this namespace, whose daemon runs.
    pub fn read(iface: &str) -> Result<State> {
        let st = State::load(iface)?;
        if !alive(st.pid) {
            bail!(
                "the dnssink attached to {iface} (PID {}) is not running",
                st.pid
            );
        }
        Ok(st)
    }

    pub fn remove(iface: &str) {
        for p in [path(iface), socket(iface)].into_iter().flatten() {
            let _ = std::fs::remove_file(p);
        }
    }

    /// Asks the instance on `iface` to reload, and waits for the result.
    pub fn reload(iface: &str, timeout: Duration) -> Result<String> {
        let before = State::read(iface)?;
        // SAFETY: SIGHUP to the PID the state file names, which was just checked to exist.
        if unsafe { libc::kill(before.pid as i32, libc::SIGHUP) } != 0 {
            bail!(
                "cannot signal PID {}: {}",
                before.pid,
                std::io::Error::last_os_error()
            );
        }
        let deadline = Instant::now() + timeout;
        loop {
            std::thread::sleep(Duration::from_millis(50));
            let now = State::read(iface)?;
            if now.reloads > before.reloads {
                return match now.last_reload.strip_prefix("ok ") {
                    Some(summary) => Ok(summary.to_string()),
                    None => bail!("{}", now.last_reload.trim_start_matches("failed ")),
                };
            }
            if Instant::now() > deadline {
                bail!(
                    "no reload result from PID {} within {timeout:?}",
                    before.pid
                );
            }
        }
    }
}
