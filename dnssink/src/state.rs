//! What a running daemon leaves for other commands (`reload`, `query`, `status`, `log`): its
//! PID, its plan, what it loaded and the result of its last reload, as JSON at
//! `InstanceId::state_path`.

use std::{
    io::Write as _,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    time::SystemTime,
};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::{
    lists::{Format, Role},
    plan::{OnExit, Plan},
};

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
    /// Writes the state to `path` (atomically: readers see the old file or the new one).
    pub fn write(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let tmp = PathBuf::from(format!("{}.tmp", path.display()));
        let mut f =
            std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(serde_json::to_string_pretty(self)?.as_bytes())?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
    }

    /// The state file at `path`.
    pub fn load(path: &Path) -> Result<State> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))
    }
}
