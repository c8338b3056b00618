//! `cargo xtask demo`: a client and a gateway in network namespaces, dnsmasq as the internal
//! resolver on the gateway, `dnssink attach` on the gateway's LAN veth, and real `dig`
//! queries from the client, blocked and passed. Everything is torn down at the end.

use std::io::Write as _;

use anyhow::{Context as _, Result};
use dnssink_tests::lab::{GW4, GW6, Lab, OUT4};

const BLOCKLIST: &str = "\
! dnssink demo: adblock rules cover a name and everything below it
||ads.example^
||tracker.example^
! an exception: allowed even though its parent is blocked
@@||ok.tracker.example^
";

const HOSTS: &str = "\
# dnssink demo: hosts entries block exactly one name
0.0.0.0 exact.example
";

fn main() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("dnssink-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let block = dir.join("block.adblock.txt");
    let hosts = dir.join("block.hosts");
    std::fs::write(&block, BLOCKLIST)?;
    std::fs::write(&hosts, HOSTS)?;
    let result = run(&block, &hosts);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn run(block: &std::path::Path, hosts: &std::path::Path) -> Result<()> {
    println!("Building the lab: client, gateway and outside namespaces, dnsmasq on the gateway...");
    let mut lab = Lab::with_outside().context("building the lab (run as root)")?;
    println!("  client  {}  198.18.0.2  2001:db8::2", lab.client.name);
    println!(
        "  gateway {}  198.18.0.1  2001:db8::1  (dnsmasq answers every name it gets)",
        lab.gateway.name
    );
    if let Some(out) = &lab.outside {
        println!(
            "  outside {}  {OUT4}  (a resolver the clients should not use)",
            out.name
        );
    }
    println!();
    println!("Blocklists:\n{}{}", indent(BLOCKLIST), indent(HOSTS));
    let mut args = vec![
        "--resolver".to_string(),
        GW4.to_string(),
        "--resolver".to_string(),
        GW6.to_string(),
        "--blocklist".to_string(),
        block.display().to_string(),
        "--blocklist".to_string(),
        hosts.display().to_string(),
    ];
    let shared = dnssink_tests::shared_list("doh-vpn-proxy-bypass.adblock.txt");
    let real = shared.exists();
    if real {
        args.extend(["--blocklist".to_string(), shared.display().to_string()]);
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let line = lab.start_dnssink(&argv)?;
    println!("$ dnssink attach lan0 {}\n{line}\n", argv.join(" "));

    let mut queries = vec![
        ("ads.example", "A", GW4, false),
        ("www.ads.example", "AAAA", GW6, false),
        ("www.ads.example", "A", GW4, true),
        ("ads.example", "ANY", GW6, true),
        ("tracker.example", "HTTPS", GW4, false),
        ("ok.tracker.example", "A", GW4, false),
        ("exact.example", "A", GW6, false),
        ("www.exact.example", "A", GW4, false),
        ("news.example", "AAAA", GW6, false),
        ("news.example", "A", GW4, true),
        ("use-application-dns.net", "A", GW4, false),
        ("news.example", "A", OUT4, false),
        ("ads.example", "A", OUT4, false),
    ];
    if real {
        queries.push(("012proxy.ga", "A", GW4, false));
    }
    println!(
        "{:<23} {:<9} {:<12} {:<34} answered by",
        "name", "type", "server", "answer"
    );
    let mut out = std::io::stdout().lock();
    for (name, qtype, server, tcp) in queries {
        let opts: &[&str] = if tcp { &["+tcp"] } else { &[] };
        let Ok(d) = lab.dig_with(server, name, qtype, opts) else {
            let (answer, by) = ("no answer", "dropped: not an internal resolver");
            writeln!(out, "{name:<23} {qtype:<9} {server:<12} {answer:<34} {by}")?;
            continue;
        };
        let answer = if d.answers.is_empty() {
            d.status.clone()
        } else {
            let rdata: Vec<&str> = d
                .answers
                .iter()
                .filter_map(|a| a.split_whitespace().last())
                .collect();
            format!("{} {}", d.status, rdata.join(" "))
        };
        let by = if d.from_dnssink() && name == "use-application-dns.net" {
            "dnssink, in XDP (a canary: Firefox keeps DoH off)"
        } else if d.from_dnssink() && tcp {
            "dnssink, over TCP (tc program)"
        } else if d.from_dnssink() {
            "dnssink, in XDP"
        } else {
            "the resolver (dnsmasq)"
        };
        let qtype = if tcp {
            format!("{qtype}/tcp")
        } else {
            qtype.to_string()
        };
        writeln!(out, "{name:<23} {qtype:<9} {server:<12} {answer:<34} {by}")?;
    }
    drop(out);
    // What an admin sees from another shell while it runs.
    std::thread::sleep(std::time::Duration::from_millis(300));
    for args in [&["log"][..], &["top", "-n", "3"], &["stats"], &["status"]] {
        let out = lab.run_dnssink(args)?;
        println!(
            "\n$ dnssink {}\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    println!("\nStopping dnssink and tearing the lab down.");
    if let Some(p) = lab.procs.last_mut() {
        let (_, lines) = p.stop()?;
        if let Some(l) = lines.iter().find(|l| l.contains("detached")) {
            println!("{l}");
        }
    }
    Ok(())
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("    {l}\n")).collect()
}
