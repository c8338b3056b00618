//! The commands that look at or act on an instance from outside its daemon, one module each.
//! (`attach` and `run` start the daemon: `daemon`.) Each finds its instance through
//! `InstanceId`.

pub mod check;
pub mod detach;
pub mod log;
pub mod query;
pub mod stats;
pub mod status;
