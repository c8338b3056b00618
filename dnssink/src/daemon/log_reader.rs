//! Reads the kernel's query log (the `EVENTS` ring buffer) into the instance's window, and to
//! the followers of `dnssink log -f`.

use std::rc::Rc;

use aya::maps::{MapData, RingBuf};
use dnssink_common::event::Event;
use tokio::io::unix::AsyncFd;

use super::Shared;
use crate::qlog::{self, Entry};

/// Reads the kernel's query log into the window and to the followers.
pub(super) async fn read_log(
    mut fd: AsyncFd<RingBuf<MapData>>,
    shared: Rc<Shared>,
    anonymize: bool,
) {
    let boot = qlog::monotonic_epoch();
    // The kernel wakes this reader once the buffer is a quarter full (see dnssink-ebpf's
    // log.rs, `wakeup`); otherwise it is drained on this tick.
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let drain = |rb: &mut RingBuf<MapData>| {
        while let Some(item) = rb.next() {
            if let Some(ev) = Event::from_bytes(&item) {
                let entry = Entry::from_event(&ev, &shared.id.iface, boot, anonymize);
                // A copy for `log --follow` only when one is listening.
                if shared.log.receiver_count() > 0 {
                    let _ = shared.log.send(entry.clone());
                }
                shared.window.borrow_mut().push(entry);
            }
        }
    };
    loop {
        tokio::select! {
            g = fd.readable_mut() => match g {
                Ok(mut g) => {
                    drain(g.get_inner_mut());
                    g.clear_ready();
                }
                Err(e) => {
                    tracing::warn!("query log: {e}");
                    return;
                }
            },
            _ = tick.tick() => drain(fd.get_mut()),
        }
    }
}
