//! `dnssink log` and `dnssink top`: the daemon's recent query log, over its control socket.

use anyhow::Result;

use crate::{cli::LogArgs, daemon::control, instance::InstanceId, qlog};

pub fn log(args: LogArgs) -> Result<()> {
    let id = InstanceId::named_or_only(args.iface.as_deref())?;
    let filter = qlog::Filter {
        client: args.client,
        name: args.name,
    };
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    control::read_log(&id.socket(), args.follow, |e| {
        if !filter.matches(&e) {
            return true;
        }
        let line = if args.json {
            serde_json::to_string(&e).unwrap_or_default()
        } else {
            e.columns()
        };
        // A closed pipe (`| head`) ends the log.
        writeln!(stdout, "{line}")
            .and_then(|_| stdout.flush())
            .is_ok()
    })
}

pub fn top(iface: Option<&str>, clients: bool, n: usize, json: bool) -> Result<()> {
    let id = InstanceId::named_or_only(iface)?;
    let mut entries = Vec::new();
    control::read_log(&id.socket(), false, |e| {
        entries.push(e);
        true
    })?;
    let top = qlog::top(entries.iter(), clients, n);
    let what = if clients { "client" } else { "name" };
    if json {
        let v: Vec<_> = top
            .iter()
            .map(|(k, c)| serde_json::json!({ what: k, "blocked": c }))
            .collect();
        println!("{}", serde_json::Value::Array(v));
        return Ok(());
    }
    println!(
        "{:>8}  {what} (blocked, over the last {} queries logged)",
        "count",
        entries.len()
    );
    for (k, c) in top {
        println!("{c:>8}  {k}");
    }
    Ok(())
}
