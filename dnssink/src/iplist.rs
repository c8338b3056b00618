//! `--block-ip FILE`: destinations to drop, one a line.
//!
//! ```text
//! 216.239.37.125 tcp/5222,tcp/5223     # those ports only (tcp/N, udp/N, or N for both)
//! 198.18.5.0/24 any                    # everything (the default)
//! 2001:db8::/32
//! ```
//!
//! Unlike blocklists, a bad line is an error that names its file and line: a mistyped
//! address must not leave a hole in the firewall.

use std::{net::IpAddr, path::Path};

use anyhow::{Context as _, Result, bail};
use dnssink_common::policy::{IP_PORTS, IpRule, PROTO_TCP, PROTO_UDP};

/// Blocked destinations: (address, prefix length, rule).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpRules {
    pub v4: Vec<([u8; 4], u8, IpRule)>,
    pub v6: Vec<([u8; 16], u8, IpRule)>,
}

impl IpRules {
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads and adds one file.
    pub fn load(&mut self, path: &Path) -> Result<()> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read --block-ip {}", path.display()))?;
        self.parse(&path.display().to_string(), &text)
    }

    pub fn parse(&mut self, name: &str, text: &str) -> Result<()> {
        for (i, line) in text.lines().enumerate() {
            let line = line.split_once('#').map_or(line, |(l, _)| l).trim();
            if line.is_empty() {
                continue;
            }
            self.line(line)
                .with_context(|| format!("{name}:{}: `{line}`", i + 1))?;
        }
        Ok(())
    }

    fn line(&mut self, line: &str) -> Result<()> {
        let mut words = line.split_whitespace();
        let net = words.next().context("no address")?;
        let spec: Vec<&str> = words.collect();
        let rule = ports(&spec.join(""))?;
        let (addr, len) = match net.split_once('/') {
            Some((a, l)) => (a, Some(l.parse::<u8>().context("bad prefix length")?)),
            None => (net, None),
        };
        match addr.parse::<IpAddr>().context("not an IP address")? {
            IpAddr::V4(a) => {
                let len = len.unwrap_or(32);
                if len > 32 {
                    bail!("prefix length {len} is over 32");
                }
                let bits = u32::from(a) & u32::MAX.checked_shl(32 - len as u32).unwrap_or(0);
                self.v4.push((bits.to_be_bytes(), len, rule));
            }
            IpAddr::V6(a) => {
                let len = len.unwrap_or(128);
                if len > 128 {
                    bail!("prefix length {len} is over 128");
                }
                let bits = u128::from(a) & u128::MAX.checked_shl(128 - len as u32).unwrap_or(0);
                self.v6.push((bits.to_be_bytes(), len, rule));
            }
        }
        Ok(())
    }
}

/// `any`, nothing (the same), or `tcp/5222,udp/53,443` (a bare port: TCP and UDP).
fn ports(spec: &str) -> Result<IpRule> {
    let mut rule = IpRule::default();
    if spec.is_empty() || spec.eq_ignore_ascii_case("any") {
        rule.any = 1;
        return Ok(rule);
    }
    for item in spec.split(',').filter(|s| !s.is_empty()) {
        let (proto, port) = match item.split_once('/') {
            Some((p, n)) => (parse_proto(p)?, n),
            None => (0, item),
        };
        let port: u16 = port
            .parse()
            .with_context(|| format!("`{item}` is not PROTO/PORT, a port, or any"))?;
        let n = rule.n as usize;
        if n == IP_PORTS {
            bail!("more than {IP_PORTS} ports for one address");
        }
        rule.protos[n] = proto;
        rule.ports[n] = port;
        rule.n += 1;
    }
    Ok(rule)
}

/// `tcp` or `udp`.
pub fn parse_proto(p: &str) -> Result<u8> {
    match p.to_ascii_lowercase().as_str() {
        "tcp" => Ok(PROTO_TCP),
        "udp" => Ok(PROTO_UDP),
        _ => bail!("`{p}` is not tcp or udp"),
    }
}

/// `--block-port PROTO/PORT`.
pub fn parse_port(s: &str) -> Result<(u8, u16), String> {
    let (p, n) = s
        .split_once('/')
        .ok_or_else(|| format!("`{s}` is not PROTO/PORT, e.g. tcp/5222"))?;
    let proto = parse_proto(p).map_err(|e| e.to_string())?;
    let port = n
        .parse()
        .map_err(|_| format!("`{n}` is not a port number"))?;
    Ok((proto, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let mut r = IpRules::default();
        r.parse(
            "t",
            "# google talk\n216.239.37.125 tcp/5222,tcp/5223\n198.18.5.7/24 any\n2001:db8::1/32\n10.1.2.3  udp/53, 443 # x\n",
        )
        .unwrap();
        assert_eq!(r.v4.len(), 3);
        assert_eq!(r.v6.len(), 1);
        let (a, l, rule) = r.v4[0];
        assert_eq!((a, l, rule.any, rule.n), ([216, 239, 37, 125], 32, 0, 2));
        assert!(rule.matches(PROTO_TCP, 5223) && !rule.matches(PROTO_UDP, 5223));
        // Host bits are cleared.
        assert_eq!(
            (r.v4[1].0, r.v4[1].1, r.v4[1].2.any),
            ([198, 18, 5, 0], 24, 1)
        );
        assert_eq!(r.v6[0].0[..4], [0x20, 0x01, 0x0d, 0xb8]);
        assert!(r.v6[0].0[4..].iter().all(|&b| b == 0));
        let rule = r.v4[2].2;
        assert!(
            rule.matches(PROTO_UDP, 53)
                && rule.matches(PROTO_TCP, 443)
                && !rule.matches(PROTO_TCP, 53)
        );
    }

    #[test]
    fn errors_name_file_and_line() {
        for (text, want) in [
            ("1.2.3.4\n300.1.1.1\n", "t:2: `300.1.1.1`"),
            ("1.2.3.0/33\n", "t:1: `1.2.3.0/33`"),
            ("1.2.3.4 sctp/5\n", "`sctp` is not tcp or udp"),
            ("1.2.3.4 tcp/x\n", "is not PROTO/PORT"),
            ("1.2.3.4 1,2,3,4,5,6,7,8\n", "more than 7 ports"),
        ] {
            let err = format!("{:#}", IpRules::default().parse("t", text).unwrap_err());
            assert!(err.contains(want), "{text:?}: {err}");
        }
        assert_eq!(parse_port("tcp/5222").unwrap(), (PROTO_TCP, 5222));
        assert!(parse_port("5222").is_err());
    }
}
