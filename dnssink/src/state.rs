//! What a running `dnssink attach` leaves for other commands (`reload`, `query`): its PID, its
//! arguments, and the result of its last reload, in `/run/dnssink/`.
//!
//! The file is named after the interface and the network namespace, since the same interface
//! name can be attached in several namespaces at once.

use std::{
    io::Write as _,
    os::unix::fs::MetadataExt as _,
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

/// Directory of the state files.
pub const DIR: &str = "/run/dnssink";

/// A running instance, as its state file describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    pub pid: u32,
    /// The arguments it was started with, after the program name.
    pub args: Vec<String>,
    /// How many reloads it has done, and how the last one went.
    pub reloads: u64,
    pub last_reload: String,
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

impl State {
    fn encode(&self) -> String {
        let mut s = format!(
            "pid {}\nreloads {}\nlast_reload {}\n",
            self.pid, self.reloads, self.last_reload
        );
        for a in &self.args {
            s.push_str(&format!(
                "arg {}\n",
                a.replace('\\', "\\\\").replace('\n', "\\n")
            ));
        }
        s
    }

    fn decode(text: &str) -> Result<State> {
        let mut st = State::default();
        for line in text.lines() {
            let (k, v) = line.split_once(' ').unwrap_or((line, ""));
            match k {
                "pid" => st.pid = v.parse().context("bad pid")?,
                "reloads" => st.reloads = v.parse().context("bad reloads")?,
                "last_reload" => st.last_reload = v.to_string(),
                "arg" => st.args.push(v.replace("\\n", "\n").replace("\\\\", "\\")),
                _ => {}
            }
        }
        Ok(st)
    }

    /// Writes the state of `iface` (atomically: readers see the old file or the new one).
    pub fn write(&self, iface: &str) -> Result<()> {
        std::fs::create_dir_all(DIR).with_context(|| format!("creating {DIR}"))?;
        let path = path(iface)?;
        let tmp = path.with_extension("tmp");
        let mut f =
            std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(self.encode().as_bytes())?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))
    }

    /// The state of the instance attached to `iface` in this namespace.
    pub fn read(iface: &str) -> Result<State> {
        let path = path(iface)?;
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "no dnssink is attached to {iface} here (no {})",
                path.display()
            )
        })?;
        let st = State::decode(&text)?;
        // SAFETY: signal 0 only checks that the PID exists.
        if unsafe { libc::kill(st.pid as i32, 0) } != 0 {
            bail!(
                "the dnssink attached to {iface} (PID {}) is not running",
                st.pid
            );
        }
        Ok(st)
    }

    pub fn remove(iface: &str) {
        if let Ok(p) = path(iface) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let st = State {
            pid: 42,
            args: vec!["attach".into(), "a b\\c\nd".into()],
            reloads: 3,
            last_reload: "failed cannot read x".into(),
        };
        assert_eq!(State::decode(&st.encode()).unwrap(), st);
    }
}
