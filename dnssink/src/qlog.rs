//! The query log in userspace: events from the kernel's ring buffer, turned into entries
//! (`dnssink log`), kept in a window (`dnssink top`), filtered and printed.

use std::{
    collections::{HashMap, VecDeque},
    net::{IpAddr, Ipv6Addr},
    time::{Duration, SystemTime},
};

use dnssink_common::{counters as c, event::Event};
use serde::{Deserialize, Serialize};

/// One logged query.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// RFC 3339, UTC, milliseconds.
    pub time: String,
    pub iface: String,
    pub client: IpAddr,
    /// Lowercase, dotted, with bytes that are not letters, digits, `-` or `_` escaped as
    /// `\DDD`.
    pub name: String,
    pub qtype: String,
    /// blocked, passed or allowed.
    pub action: String,
    /// What answered it: exact, subtree or canary, or tcp for an answer over TCP; empty when
    /// passed.
    pub rule: String,
}

impl Entry {
    /// The entry for a kernel event. `boot` is the wall-clock time of CLOCK_MONOTONIC's zero.
    pub fn from_event(e: &Event, iface: &str, boot: SystemTime, anonymize: bool) -> Entry {
        let (action, rule) = match e.action as u32 {
            c::ANSWERED_EXACT => ("blocked", "exact"),
            c::ANSWERED_SUBTREE => ("blocked", "subtree"),
            c::ANSWERED_CANARY => ("blocked", "canary"),
            c::ANSWERED_TCP => ("blocked", "tcp"),
            c::ALLOWED => ("allowed", ""),
            _ => ("passed", ""),
        };
        let v6 = Ipv6Addr::from(e.client);
        let mut client = v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4);
        if anonymize {
            client = anonymize_addr(client);
        }
        let time = boot + Duration::from_nanos(e.time_ns);
        Entry {
            time: humantime::format_rfc3339_millis(time).to_string(),
            iface: iface.to_string(),
            client,
            name: name_text(e),
            qtype: hickory_proto::rr::RecordType::from(e.qtype).to_string(),
            action: action.to_string(),
            rule: rule.to_string(),
        }
    }

    /// Readable columns: time, client, type, action, name.
    pub fn columns(&self) -> String {
        let action = if self.rule.is_empty() {
            self.action.clone()
        } else {
            format!("{}/{}", self.action, self.rule)
        };
        format!(
            "{}  {:<15}  {:<6} {:<16} {}",
            self.time, self.client, self.qtype, action, self.name
        )
    }
}

/// The address with its host part zeroed: a /24 for IPv4, a /56 for IPv6.
pub fn anonymize_addr(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V4(v4) => {
            let mut o = v4.octets();
            o[3] = 0;
            IpAddr::V4(o.into())
        }
        IpAddr::V6(v6) => {
            let mut o = v6.octets();
            o[7..].fill(0);
            IpAddr::V6(o.into())
        }
    }
}

/// The name of an event as text: lowercase, dotted, odd bytes escaped.
pub fn name_text(e: &Event) -> String {
    let Some(labels) = e.labels() else {
        return "<malformed>".to_string();
    };
    let mut s = String::new();
    for label in labels {
        for &b in label {
            match b.to_ascii_lowercase() {
                b @ (b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_') => s.push(b as char),
                b => s.push_str(&format!("\\{b:03}")),
            }
        }
        s.push('.');
    }
    if s.len() > 1 {
        s.pop();
    }
    s
}

/// The wall-clock time of CLOCK_MONOTONIC's zero, which the kernel's timestamps count from.
pub fn monotonic_epoch() -> SystemTime {
    // SAFETY: clock_gettime into a zeroed timespec.
    let mono = unsafe {
        let mut ts: libc::timespec = std::mem::zeroed();
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    };
    SystemTime::now() - mono
}

/// Which entries to show.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub client: Option<ipnet::IpNet>,
    /// A name, matching itself and its subdomains.
    pub name: Option<String>,
}

impl Filter {
    pub fn matches(&self, e: &Entry) -> bool {
        if let Some(net) = &self.client
            && !net.contains(&e.client)
        {
            return false;
        }
        if let Some(suffix) = &self.name {
            let suffix = suffix.trim_end_matches('.').to_ascii_lowercase();
            if !(e.name == suffix || e.name.ends_with(&format!(".{suffix}"))) {
                return false;
            }
        }
        true
    }
}

/// The most recent entries, at most `cap`.
#[derive(Debug)]
pub struct Window {
    cap: usize,
    entries: VecDeque<Entry>,
}

impl Window {
    pub fn new(cap: usize) -> Window {
        Window {
            cap,
            entries: VecDeque::with_capacity(cap.min(1024)),
        }
    }

    pub fn push(&mut self, e: Entry) {
        if self.cap == 0 {
            return;
        }
        if self.entries.len() == self.cap {
            self.entries.pop_front();
        }
        self.entries.push_back(e);
    }

    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }
}

/// The `n` most-blocked names (or clients) among `entries`, with their counts, most first,
/// ties by name.
pub fn top<'a>(
    entries: impl Iterator<Item = &'a Entry>,
    clients: bool,
    n: usize,
) -> Vec<(String, u64)> {
    let mut counts: HashMap<String, u64> = HashMap::new();
    for e in entries.filter(|e| e.action == "blocked") {
        let key = if clients {
            e.client.to_string()
        } else {
            e.name.clone()
        };
        *counts.entry(key).or_default() += 1;
    }
    let mut v: Vec<(String, u64)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(n);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(wire: &[u8], client: [u8; 16], action: u32) -> Event {
        let mut e = Event {
            time_ns: 1_500_000_000,
            client,
            qtype: 28,
            action: action as u8,
            name_len: wire.len() as u16,
            ..Event::EMPTY
        };
        e.name[..wire.len()].copy_from_slice(wire);
        e
    }

    fn v4(a: [u8; 4]) -> [u8; 16] {
        std::net::Ipv4Addr::from(a).to_ipv6_mapped().octets()
    }

    #[test]
    fn entry_from_event() {
        let e = event(
            b"\x03ADs\x02e\x01\x03com\x00",
            v4([198, 18, 0, 2]),
            c::ANSWERED_SUBTREE,
        );
        let entry = Entry::from_event(&e, "lan0", SystemTime::UNIX_EPOCH, false);
        assert_eq!(entry.time, "1970-01-01T00:00:01.500Z");
        assert_eq!(entry.client.to_string(), "198.18.0.2");
        assert_eq!(entry.name, "ads.e\\001.com");
        assert_eq!(entry.qtype, "AAAA");
        assert_eq!(
            (entry.action.as_str(), entry.rule.as_str()),
            ("blocked", "subtree")
        );
        let json = serde_json::to_string(&entry).unwrap();
        assert_eq!(serde_json::from_str::<Entry>(&json).unwrap(), entry);
    }

    #[test]
    fn anonymized_clients() {
        let e = event(b"\x01a\x00", v4([198, 18, 0, 77]), c::PASSED);
        let entry = Entry::from_event(&e, "lan0", SystemTime::UNIX_EPOCH, true);
        assert_eq!(entry.client.to_string(), "198.18.0.0");
        assert_eq!(entry.action, "passed");
        let six: Ipv6Addr = "2001:db8:aa:bbcc:1:2:3:4".parse().unwrap();
        let e = event(b"\x01a\x00", six.octets(), c::ALLOWED);
        let entry = Entry::from_event(&e, "lan0", SystemTime::UNIX_EPOCH, true);
        assert_eq!(entry.client.to_string(), "2001:db8:aa:bb00::");
    }

    #[test]
    fn filters() {
        let mk = |name: &str, client: &str| Entry {
            time: String::new(),
            iface: String::new(),
            client: client.parse().unwrap(),
            name: name.into(),
            qtype: "A".into(),
            action: "blocked".into(),
            rule: "exact".into(),
        };
        let f = Filter {
            client: Some("198.18.0.0/24".parse().unwrap()),
            name: Some("Example.COM.".into()),
        };
        assert!(f.matches(&mk("example.com", "198.18.0.9")));
        assert!(f.matches(&mk("ads.example.com", "198.18.0.9")));
        assert!(!f.matches(&mk("badexample.com", "198.18.0.9")));
        assert!(!f.matches(&mk("example.com", "198.19.0.9")));
        let mut w = Window::new(3);
        for (n, c) in [
            ("a", "::1"),
            ("b", "::2"),
            ("a", "::1"),
            ("a", "::2"),
            ("c", "::1"),
        ] {
            w.push(mk(n, c));
        }
        assert_eq!(w.iter().count(), 3);
        assert_eq!(top(w.iter(), false, 10), [("a".into(), 2), ("c".into(), 1)]);
        assert_eq!(top(w.iter(), true, 1), [("::1".into(), 2)]);
    }
}
