//! `--response`: what a blocked name gets.

use std::net::IpAddr;

use dnssink_common::config::{Config, response};

/// Parses `nxdomain`, `nodata`, `null`, `refused`, or one or two block-page addresses
/// (`198.18.0.10`, `2001:db8::10`, or both separated by a comma).
pub fn parse(s: &str) -> Result<Config, String> {
    let mut c = Config::default();
    match s.to_ascii_lowercase().as_str() {
        "nxdomain" => c.response = response::NXDOMAIN,
        "nodata" => c.response = response::NODATA,
        "refused" => c.response = response::REFUSED,
        "null" => {
            c.response = response::ADDRESS;
            c.has_v4 = 1;
            c.has_v6 = 1;
        }
        list => {
            c.response = response::ADDRESS;
            for part in list.split(',') {
                let addr: IpAddr = part.trim().parse().map_err(|_| {
                    format!(
                        "`{part}` is not nxdomain, nodata, null, refused or an IP address \
                         (for a block page: --response 198.18.0.10,2001:db8::10)"
                    )
                })?;
                match addr {
                    IpAddr::V4(a) if c.has_v4 == 0 => {
                        c.has_v4 = 1;
                        c.v4 = a.octets();
                    }
                    IpAddr::V6(a) if c.has_v6 == 0 => {
                        c.has_v6 = 1;
                        c.v6 = a.octets();
                    }
                    _ => return Err(format!("more than one {} address", family(&addr))),
                }
            }
        }
    }
    Ok(c)
}

fn family(a: &IpAddr) -> &'static str {
    if a.is_ipv4() { "IPv4" } else { "IPv6" }
}

/// A short description for the summary line.
pub fn describe(c: &Config) -> String {
    match c.response {
        response::NXDOMAIN => "nxdomain".into(),
        response::NODATA => "nodata".into(),
        response::REFUSED => "refused".into(),
        _ => {
            let mut parts = Vec::new();
            if c.has_v4 != 0 {
                parts.push(std::net::Ipv4Addr::from(c.v4).to_string());
            }
            if c.has_v6 != 0 {
                parts.push(std::net::Ipv6Addr::from(c.v6).to_string());
            }
            parts.join(",")
        }
    }
}

/// `--response`, as the kernel's config gets it (its response fields; the rest is the
/// plan's), and as the text it was given in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Response(pub Config);

impl std::str::FromStr for Response {
    type Err = String;
    fn from_str(s: &str) -> Result<Response, String> {
        parse(s).map(Response)
    }
}

impl std::fmt::Display for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(&describe(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert_eq!(parse("NXDOMAIN").unwrap().response, response::NXDOMAIN);
        assert_eq!(parse("nodata").unwrap().response, response::NODATA);
        assert_eq!(parse("refused").unwrap().response, response::REFUSED);
        let null = parse("null").unwrap();
        assert_eq!((null.has_v4, null.has_v6, null.v4), (1, 1, [0; 4]));
        let both = parse("198.18.0.10,2001:db8::10").unwrap();
        assert_eq!(both.v4, [198, 18, 0, 10]);
        assert_eq!(describe(&both), "198.18.0.10,2001:db8::10");
        let v6 = parse("2001:db8::10").unwrap();
        assert_eq!((v6.has_v4, v6.has_v6), (0, 1));
    }

    #[test]
    fn errors_name_the_problem() {
        assert!(parse("nxdomian").unwrap_err().contains("nxdomian"));
        assert!(parse("198.18.0.1,198.18.0.2").unwrap_err().contains("IPv4"));
    }
}
