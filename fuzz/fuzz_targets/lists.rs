//! The blocklist parsers on arbitrary bytes: no panic, and every name they give is
//! normalised (lower case, valid labels, at most 253 characters). Memory is bounded by
//! libFuzzer's -rss_limit_mb, which `cargo xtask fuzz` sets.
#![no_main]

use dnssink::lists::{Format, Options, collect};
use libfuzzer_sys::fuzz_target;

const FORMATS: [Option<Format>; 8] = [
    None,
    Some(Format::Hosts),
    Some(Format::Domains),
    Some(Format::Adblock),
    Some(Format::Wildcard),
    Some(Format::Dnsmasq),
    Some(Format::Unbound),
    Some(Format::Rpz),
];

fuzz_target!(|input: &[u8]| {
    // The first byte picks the format (or detection) and --subdomains; the rest is the list.
    let Some((&knob, data)) = input.split_first() else {
        return;
    };
    let opts = Options {
        format: FORMATS[usize::from(knob) % FORMATS.len()],
        subdomains: knob & 0x80 != 0,
        ..Options::block()
    };
    let (summary, rules) = collect("fuzz", data, &opts);
    for (name, _, line) in &rules {
        assert!(*line >= 1);
        assert!(!name.is_empty() && name.len() <= 253, "{name:?}");
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b)),
            "{name:?}"
        );
        assert!(
            name.split('.').all(|l| !l.is_empty() && l.len() <= 63),
            "{name:?}"
        );
    }
    assert!(summary.rules <= rules.len());
});
