//! Prometheus metrics (`--metrics ADDR:PORT`): the kernel's counters, the rules loaded per
//! list, and the reloads, for every instance of the daemon, read at each scrape.

use std::{net::SocketAddr, rc::Rc};

use anyhow::{Context as _, Result};
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpListener,
};

use super::Shared;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Iface {
    iface: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct List {
    iface: String,
    list: String,
    role: String,
}

/// The text exposition of every instance's metrics.
pub fn render(instances: &[Rc<Shared>]) -> Result<String> {
    let mut registry = Registry::with_prefix("dnssink");
    let mut kernel: Vec<(&str, Family<Iface, Counter>)> = dnssink_common::counters::ALL
        .iter()
        .map(|(_, name)| (*name, Family::default()))
        .collect();
    let rules = Family::<List, Gauge>::default();
    let rules_total = Family::<Iface, Gauge>::default();
    let reloads = Family::<Iface, Counter>::default();
    let reload_time = Family::<Iface, Gauge>::default();
    let reload_ok = Family::<Iface, Gauge>::default();
    let loaded_time = Family::<Iface, Gauge>::default();
    for inst in instances {
        let label = Iface {
            iface: inst.id.iface.clone(),
        };
        let counters = crate::bpf::pinned_counters(&inst.id.pin_dir())?;
        for (name, family) in &kernel {
            family
                .get_or_create(&label)
                .inc_by(counters.get(name).copied().unwrap_or(0));
        }
        let st = inst.state.borrow();
        for l in &st.lists {
            rules
                .get_or_create(&List {
                    iface: inst.id.iface.clone(),
                    list: l.path.clone(),
                    role: l.role.to_string(),
                })
                .set(l.rules as i64);
        }
        rules_total.get_or_create(&label).set(st.rules as i64);
        reloads.get_or_create(&label).inc_by(st.reloads);
        reload_time
            .get_or_create(&label)
            .set(st.last_reload_time as i64);
        reload_ok
            .get_or_create(&label)
            .set(i64::from(!st.last_reload.starts_with("failed")));
        loaded_time.get_or_create(&label).set(st.loaded as i64);
    }
    for (name, family) in kernel.drain(..) {
        registry.register(
            name,
            format!("Kernel counter {name} (see `dnssink stats`)"),
            family,
        );
    }
    registry.register(
        "rules",
        "Rules loaded from each list (allow rules included)",
        rules,
    );
    registry.register(
        "rules_loaded",
        "Rules in the live table, canaries included",
        rules_total,
    );
    registry.register("reloads", "Reloads done (SIGHUP)", reloads);
    registry.register(
        "last_reload_timestamp_seconds",
        "When the last reload ended (0: none yet)",
        reload_time,
    );
    registry.register(
        "last_reload_success",
        "1 if the last reload succeeded (or none was done), 0 if it failed",
        reload_ok,
    );
    registry.register(
        "rules_loaded_timestamp_seconds",
        "When the live rules were loaded",
        loaded_time,
    );
    let mut out = String::new();
    encode(&mut out, &registry).context("encoding the metrics")?;
    Ok(out)
}

/// Serves `GET /metrics` at `addr` until the task is dropped.
pub async fn listen(addr: SocketAddr, instances: Vec<Rc<Shared>>) -> Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("--metrics {addr}: cannot listen"))?;
    tracing::info!("metrics at http://{addr}/metrics");
    let instances = Rc::new(instances);
    tokio::task::spawn_local(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let instances = instances.clone();
            tokio::task::spawn_local(async move {
                let mut buf = vec![0u8; 4096];
                let mut n = 0;
                // The request head; its body, if any, is ignored.
                while n < buf.len() {
                    match stream.read(&mut buf[n..]).await {
                        Ok(0) | Err(_) => break,
                        Ok(k) => n += k,
                    }
                    if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
                let head = String::from_utf8_lossy(&buf[..n]);
                let path = head.split_whitespace().nth(1).unwrap_or("");
                let (status, ctype, body) = if !head.starts_with("GET ") {
                    (
                        "405 Method Not Allowed",
                        "text/plain",
                        "GET only\n".to_string(),
                    )
                } else if path != "/metrics" {
                    ("404 Not Found", "text/plain", "see /metrics\n".to_string())
                } else {
                    match render(&instances) {
                        Ok(text) => (
                            "200 OK",
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            text,
                        ),
                        Err(e) => (
                            "500 Internal Server Error",
                            "text/plain",
                            format!("{e:#}\n"),
                        ),
                    }
                };
                let reply = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(reply.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    Ok(())
}
