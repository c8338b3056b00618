//! The --block-ip parser on arbitrary text: no panic, and errors name the line.
#![no_main]

use dnssink::iplist::IpRules;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut rules = IpRules::default();
    if let Err(e) = rules.parse("fuzz", &text) {
        assert!(format!("{e:#}").contains("fuzz:"), "{e:#}");
    }
});
