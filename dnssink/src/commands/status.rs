//! `dnssink status`: the instances attached here, from their state files.

use anyhow::Result;

use crate::{
    instance::InstanceId,
    state::{self, State},
};

fn ago(then: u64) -> String {
    let s = state::now().saturating_sub(then);
    if then == 0 {
        "never".into()
    } else if s < 120 {
        format!("{s}s")
    } else if s < 7200 {
        format!("{}m", s / 60)
    } else if s < 172_800 {
        format!("{}h", s / 3600)
    } else {
        format!("{}d", s / 86400)
    }
}

pub fn run(json: bool) -> Result<()> {
    let mut out = Vec::new();
    for id in InstanceId::all()? {
        let iface = &id.iface;
        let st = id.state().unwrap_or_default();
        let running = state::alive(st.pid);
        out.push(serde_json::json!({
            "iface": iface,
            "running": running,
            "pid": st.pid,
            "kept": id.is_kept(),
            "on_exit": st.on_exit,
            "mode": st.mode,
            "program_id": st.program_id,
            "uptime_secs": state::now().saturating_sub(st.started),
            "rules": st.rules,
            "loaded_secs_ago": state::now().saturating_sub(st.loaded),
            "reloads": st.reloads,
            "last_reload": st.last_reload,
            "lists": st.lists.iter().map(|l| serde_json::json!({
                "path": l.path, "role": l.role, "format": l.format, "rules": l.rules,
                "modified_secs_ago": state::now().saturating_sub(l.modified),
            })).collect::<Vec<_>>(),
        }));
        if !json {
            print(iface, &st, running);
        }
    }
    if json {
        println!("{}", serde_json::Value::Array(out));
    } else if out.is_empty() {
        println!("dnssink is not attached to any interface here");
    }
    Ok(())
}

fn print(iface: &str, st: &State, running: bool) {
    let who = if running {
        format!("running (PID {})", st.pid)
    } else {
        "kept: no daemon, filtering with its last rules".to_string()
    };
    println!(
        "{iface}: {who}; {} mode, program {}, on exit {}",
        st.mode, st.program_id, st.on_exit
    );
    println!(
        "  up {}; {} rules, loaded {} ago; {} reload{}{}",
        ago(st.started),
        st.rules,
        ago(st.loaded),
        st.reloads,
        if st.reloads == 1 { "" } else { "s" },
        if st.last_reload.is_empty() {
            String::new()
        } else {
            format!(", last: {}", st.last_reload)
        }
    );
    for l in &st.lists {
        println!(
            "  {} {} ({}, {} rules, changed {} ago)",
            l.role,
            l.path,
            l.format,
            l.rules,
            ago(l.modified)
        );
    }
}
