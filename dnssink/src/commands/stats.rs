//! `dnssink stats`: the kernel's counters of an instance, from its pinned map.

use anyhow::{Context as _, Result, bail};

use crate::{bpf, instance::InstanceId};

pub fn run(iface: Option<&str>, json: bool) -> Result<()> {
    let id = InstanceId::named_or_only(iface)?;
    if !id.is_attached() {
        bail!("dnssink is not attached to {id} here");
    }
    let counters = bpf::pinned_counters(&id.pin_dir())
        .with_context(|| format!("no dnssink is attached to {id} here"))?;
    let get = |n: &str| counters.get(n).copied().unwrap_or(0);
    let answered = get("answered_exact") + get("answered_subtree") + get("answered_canary");
    if json {
        let mut m = serde_json::Map::new();
        m.insert("iface".into(), id.iface.clone().into());
        m.insert("answered".into(), answered.into());
        for (_, name) in dnssink_common::counters::ALL {
            m.insert(name.to_string(), get(name).into());
        }
        println!("{}", serde_json::Value::Object(m));
        return Ok(());
    }
    println!("{id}:");
    println!("  {:<34} {answered}", "answered");
    for (_, name) in dnssink_common::counters::ALL {
        println!("  {name:<34} {}", get(name));
    }
    Ok(())
}
