//! What an instance shares with its log reader, its control socket and the metrics: the
//! daemon's loop owns the instance, and these read it through this.

use std::cell::RefCell;

use tokio::sync::broadcast;

use crate::{
    instance::InstanceId,
    qlog::{Entry, Window},
    state::State,
};

pub struct Shared {
    pub id: InstanceId,
    pub state: RefCell<State>,
    /// The recent queries, for `dnssink log` and `dnssink top`.
    pub window: RefCell<Window>,
    /// Every new query, for `dnssink log -f`.
    pub log: broadcast::Sender<Entry>,
}
