//! The shared lists through the real parsers and compiled tables: the pairs of files that hold
//! one list in two formats must agree as `../shared/blocklists/README.md` says.

use dnssink::{
    ListSpec, Loaded,
    lists::{Options, collect},
};
use dnssink_tests::shared_list;

fn load(name: &str) -> Loaded {
    let spec = ListSpec {
        path: shared_list(name),
        opts: Options::block(),
    };
    dnssink::load_lists(&[spec], false, false).unwrap()
}

fn names(name: &str) -> Vec<String> {
    let bytes = std::fs::read(shared_list(name)).unwrap();
    collect(name, &bytes, &Options::block())
        .1
        .into_iter()
        .map(|r| r.0)
        .collect()
}

#[test]
fn hagezi_adblock_and_wildcard_load_to_the_same_rules() {
    let a = load("hagezi-light.adblock.txt");
    let w = load("hagezi-light.wildcard.txt");
    assert_eq!(a.rules.len(), 122_680, "{}", a.summary());
    assert_eq!(w.rules.len(), 122_680, "{}", w.summary());
    // Built deterministically from the same rules: the same table, slot for slot.
    assert!(a.rules.table == w.rules.table);
}

/// Each folded file, loaded alone, blocks every name of its unfolded twin but the few the
/// converter dropped.
#[test]
fn folded_lists_block_their_unfolded_twins() {
    for (folded, unfolded, left) in [
        ("stevenblack.adblock.txt", "stevenblack.domains.txt", 213),
        ("adguarddns.adblock.txt", "adguarddns.hosts.txt", 53),
        ("easylist.dnsmasq.txt", "easylist.domains.txt", 8),
    ] {
        let table = load(folded);
        let all = names(unfolded);
        let unblocked: Vec<&String> = all
            .iter()
            .filter(|n| !table.rules.verdict(n).blocked())
            .collect();
        assert_eq!(
            unblocked.len(),
            left,
            "{folded} vs {unfolded}: first unblocked {:?}",
            &unblocked[..unblocked.len().min(5)]
        );
        // The unfolded file blocks each of its own names, exactly.
        let own = load(unfolded);
        assert!(
            all.iter()
                .step_by(101)
                .all(|n| own.rules.verdict(n).blocked())
        );
    }
}

#[test]
fn every_shared_list_loads_without_surprises() {
    for (name, rules) in [
        ("adguarddns.hosts.txt", 123_962),
        ("stevenblack.domains.txt", 140_626),
        ("easylist.domains.txt", 86_674),
        ("doh-vpn-proxy-bypass.adblock.txt", 714),
        ("doh-vpn-proxy-bypass.domains.txt", 1205), // unfolded: its header says 1205
    ] {
        let l = load(name);
        assert_eq!(l.rules.len(), rules, "{name}: {}", l.summary());
    }
    // The allowlist: exceptions, a few of them globs that are not DNS rules.
    let spec = ListSpec {
        path: shared_list("referral.allowlist.adblock.txt"),
        opts: Options::allow(),
    };
    let l = dnssink::load_lists(&[spec], false, false).unwrap();
    assert!(
        l.rules.len() > 400 && l.lists[0].skipped_total() > 0,
        "{}",
        l.summary()
    );
    assert!(
        dnssink::load_lists(
            &[ListSpec {
                path: shared_list("referral.allowlist.adblock.txt"),
                opts: Options::allow(),
            }],
            true,
            false
        )
        .is_err()
    );
}

#[test]
fn query_explains_offline() {
    let dir = tempfile::tempdir().unwrap();
    let block = dir.path().join("block.txt");
    let allow = dir.path().join("allow.txt");
    std::fs::write(&block, "||ads.test^\n0.0.0.0 hosts.test\n").unwrap();
    std::fs::write(&allow, "ok.ads.test\n").unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(dnssink_tests::lab::dnssink_bin().unwrap())
            .arg("query")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let (b, a) = (block.to_str().unwrap(), allow.to_str().unwrap());
    // --format forces adblock: the mixed file's hosts line is skipped.
    let out = run(&[
        "--blocklist",
        b,
        "--allowlist",
        a,
        "--format",
        "adblock",
        "x.ads.test",
        "ok.ads.test",
        "hosts.test",
    ]);
    assert!(out.contains("x.ads.test: blocked\n"), "{out}");
    assert!(
        out.contains(&format!(
            "{b}:1: `||ads.test^` (block, the name and below ads.test)"
        )),
        "{out}"
    );
    assert!(
        out.contains("ok.ads.test: allowed (an allow rule beats the block)"),
        "{out}"
    );
    // --format applies to every list: the allowlist's plain name reads as an adblock rule.
    assert!(
        out.contains(&format!(
            "{a}:1: `ok.ads.test` (allow, the name and below ok.ads.test)"
        )),
        "{out}"
    );
    assert!(out.contains("hosts.test: not blocked"), "{out}");
    // --subdomains widens exact entries of hosts and domain lists.
    std::fs::write(&block, "0.0.0.0 hosts.test\n").unwrap();
    let out = run(&["--blocklist", b, "www.hosts.test"]);
    assert!(out.contains("www.hosts.test: not blocked"), "{out}");
    let out = run(&["--blocklist", b, "--subdomains", "www.hosts.test"]);
    assert!(out.contains("www.hosts.test: blocked"), "{out}");
}
