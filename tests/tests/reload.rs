//! Reload under load, in a netns lab: a client streams queries while the gateway's dnssink
//! reloads ten times. No name blocked before and after may ever reach the resolver, and no
//! query may go unanswered.

use std::{
    sync::atomic::{AtomicBool, AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use dnssink_tests::lab::{self, GW4, Lab, in_netns};
use hickory_proto::op::ResponseCode;

const BOTH: usize = 20;
const NEW: usize = 10;

/// The list: names blocked in every version, names added by the reloads, and filler that
/// changes the table's size from one version to the next.
fn list(version: usize) -> String {
    let mut s = String::from("! reload test\n");
    for i in 0..BOTH {
        s.push_str(&format!("||both{i}.test^\n"));
    }
    if version > 0 {
        for i in 0..NEW {
            s.push_str(&format!("||new{i}.test^\n"));
        }
        for i in 0..version * 5000 {
            s.push_str(&format!("||filler{i}.v{version}.test^\n"));
        }
    }
    s
}

#[derive(Default, Debug)]
struct Stream {
    sent: usize,
    lost: usize,
    /// A name blocked in every version got the resolver's answer.
    both_passed: usize,
    /// A name added by the first reload got the resolver's answer after that reload.
    new_passed: usize,
    new_checked: usize,
}

fn stream(stop: &AtomicBool, reloaded: &AtomicUsize) -> anyhow::Result<Stream> {
    let mut st = Stream::default();
    let kind = |n: usize| n % 3;
    // Reloads done before each query was sent: those must be live for its answer.
    let done_before = std::cell::Cell::new(0);
    lab::query_stream(
        (GW4, 53),
        Duration::from_secs(2),
        stop,
        |n| {
            done_before.set(reloaded.load(Ordering::SeqCst));
            match kind(n) {
                0 => format!("www.both{}.test.", n % BOTH),
                1 => format!("new{}.test.", n % NEW),
                _ => format!("pass{n}.test."),
            }
        },
        |n, answer| {
            st.sent += 1;
            let Some(m) = answer else {
                st.lost += 1;
                return;
            };
            let sinkholed = m.response_code() == ResponseCode::NXDomain;
            match kind(n) {
                0 if !sinkholed => st.both_passed += 1,
                1 if done_before.get() >= 1 => {
                    st.new_checked += 1;
                    if !sinkholed {
                        st.new_passed += 1;
                    }
                }
                _ => {}
            }
        },
    )?;
    Ok(st)
}

#[test]
fn ten_reloads_under_load() {
    let mut lab = Lab::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("list.txt");
    std::fs::write(&path, list(0)).unwrap();
    let line = lab
        .start_dnssink(&["--blocklist", path.to_str().unwrap()])
        .unwrap();
    let prog = line
        .split("program id ")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap()
        .to_string();
    let first_table = lab::live_table(&prog).unwrap();

    let stop = AtomicBool::new(false);
    let reloaded = AtomicUsize::new(0);
    let (st, reload_times) = std::thread::scope(|s| {
        let client = s.spawn(|| in_netns(&lab.client.name, || stream(&stop, &reloaded)));
        std::thread::sleep(Duration::from_millis(300));
        let mut times = Vec::new();
        for v in 1..=10 {
            std::fs::write(&path, list(v)).unwrap();
            let t = Instant::now();
            let out = lab.run_dnssink(&["reload", "lan0"]).unwrap();
            times.push(t.elapsed());
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{text}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                text.contains(&format!("{} rules", BOTH + NEW + v * 5000)),
                "{text}"
            );
            reloaded.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(100));
        }
        stop.store(true, Ordering::Relaxed);
        (client.join().unwrap().unwrap(), times)
    });
    eprintln!("{st:?}; reloads took {reload_times:?}");
    assert!(st.sent > 1000, "{st:?}");
    assert_eq!(st.lost, 0, "{st:?}");
    assert_eq!(st.both_passed, 0, "{st:?}");
    assert!(st.new_checked > 100, "{st:?}");
    assert_eq!(st.new_passed, 0, "{st:?}");

    // The first table is freed: kernel memory holds one rule set.
    let deadline = Instant::now() + Duration::from_secs(5);
    while lab::map_show(first_table).is_some() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        lab::map_show(first_table).is_none(),
        "map {first_table} outlived its reload"
    );

    // A failed reload keeps the old rules, and says why.
    std::fs::remove_file(&path).unwrap();
    let out = lab.run_dnssink(&["reload", "lan0"]).unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("cannot read") && err.contains("list.txt"),
        "{err}"
    );
    let d = lab.dig(GW4, "new3.test", "A").unwrap();
    assert_eq!(d.status, "NXDOMAIN", "{}", d.text);

    // Which rule blocks a name: asked of the running instance.
    std::fs::write(&path, list(10)).unwrap();
    let out = lab
        .run_dnssink(&["query", "www.both7.test", "pass.test"])
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = format!("{}:9: `||both7.test^`", path.display());
    assert!(
        text.contains("www.both7.test: blocked") && text.contains(&want),
        "{text}"
    );
    assert!(text.contains("pass.test: not blocked"), "{text}");
}
