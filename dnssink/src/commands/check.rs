//! `dnssink check-config`: a config file and its lists, read and compiled, with nothing
//! attached.

use std::path::Path;

use anyhow::{Context as _, Result, bail};

use crate::{config_file, host};

pub fn run(path: &Path) -> Result<()> {
    let c = config_file::load(path)?;
    for plan in &c.interfaces {
        let here = || format!("{}: [[interface]] {:?}", path.display(), plan.iface);
        if plan.lists.blocklists.is_empty() {
            bail!("{}: no `blocklist`", here());
        }
        let loaded = plan.lists.load().with_context(here)?;
        let ips = plan.ip_rules().with_context(here)?;
        let present = if host::check_interface(&plan.iface).is_ok() {
            ""
        } else {
            " (not present on this machine)"
        };
        println!(
            "{}{present}: {}; {} blocked destinations",
            plan.iface,
            loaded.summary(),
            ips.len()
        );
    }
    if let Some(m) = c.metrics {
        println!("metrics at http://{m}/metrics");
    }
    println!("{}: ok", path.display());
    Ok(())
}
