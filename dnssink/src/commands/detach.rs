//! `dnssink detach`: stop an instance's daemon, and remove its program, its pins and its
//! state, kept or not.

use std::time::Duration;

use anyhow::{Result, bail};

use crate::{bpf, instance::InstanceId, pin, state};

pub fn run(iface: &str, timeout: Duration) -> Result<()> {
    let id = InstanceId::here(iface)?;
    let st = id.state().ok();
    let dir = id.pin_dir();
    if st.is_none() && !dir.exists() {
        bail!("dnssink is not attached to {iface} here");
    }
    if let Some(st) = &st
        && state::alive(st.pid)
    {
        // SAFETY: SIGTERM to the daemon's PID, just checked to exist.
        unsafe { libc::kill(st.pid as i32, libc::SIGTERM) };
        let deadline = std::time::Instant::now() + timeout;
        while state::alive(st.pid) {
            if std::time::Instant::now() > deadline {
                bail!("PID {} did not stop within {timeout:?}", st.pid);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // A kept program goes with its pinned link; on a kernel without TCX, the TCP program's
    // tc filter is removed by hand.
    pin::remove(&dir)?;
    bpf::TcFilter::remove(iface);
    id.remove_state();
    println!("dnssink: detached from {iface}");
    Ok(())
}
