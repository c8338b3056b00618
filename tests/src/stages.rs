//! The stage breakdown: what each stage of the XDP program costs a blocked and an allowed
//! query, at 1M rules, warm and cold, from BPF_PROG_TEST_RUN (the kernel times each run).
//!
//! The program is not changed for it (a stop per stage, even as read-only data the verifier
//! folds, left instructions in the daemon's program). Each stage is instead the difference
//! between two inputs, or two tables, that leave the program one stage apart:
//! - entry: an ARP frame, which leaves at the first header
//! - frame: UDP to port 5353, which leaves once the headers and the port policy are read
//! - question: a query with no rule table at all (the lookup finds no table)
//! - lookup: the same query, not listed, at 1M rules (every suffix looked up)
//! - reply: a blocked name with `--no-log` (the client check, the answer, the rewrite; and
//!   the reading of its own buckets, which the allowed name's filter check skips)
//! - log: the same with the query log on (the default)
//!
//! Warm: one name again and again. Cold: a different name each run, spread over the whole
//! table, so that its buckets are rarely in cache. The cases are measured in rounds, each
//! case a batch a round, so that the noise of a shared machine falls on all of them alike.

use crate::frame;
use anyhow::{Result, bail};
use aya::programs::{TestRun as _, TestRunOptions};
use dnssink::bpf::{LoadOptions, Sinkhole};

const ROUNDS: usize = 8;
const BATCH: usize = 1000;
const COLD_NAMES: usize = 8192;

/// One case: a program, its frames (cycled), and what it must return.
struct Case<'a> {
    sinkhole: &'a Sinkhole,
    frames: &'a [Vec<u8>],
    action: u32,
    total_ns: u128,
    runs: u64,
}

/// Mean ns per run of each stage, warm and cold.
pub struct Stages {
    /// Each stage's ns: blocked warm, blocked cold, allowed warm, allowed cold.
    pub rows: Vec<(&'static str, [f64; 4])>,
}

fn query_frames(names: impl Iterator<Item = String>) -> Vec<Vec<u8>> {
    names
        .map(|n| {
            let q = frame::query(&format!("{n}."), hickory_proto::rr::RecordType::A, true);
            frame::frame(&frame::Spec::v4(), &q)
        })
        .collect()
}

pub fn measure(names: &[String]) -> Result<Stages> {
    let rules = dnssink::compile::RuleSet::from_rules(
        names
            .iter()
            .map(|n| (n.as_str(), dnssink::lists::Kind::BlockExact)),
    )?;
    // The daemon's program, the same with --no-log, and one with no rule table.
    let mut events = Sinkhole::load(&rules, &crate::settings(&[]))?;
    let mut ring = events.take_events()?;
    let nolog = Sinkhole::load(&rules, &crate::settings(&["--no-log"]))?;
    let mut bare = Sinkhole::load_program(&LoadOptions::default())?;
    bare.set_settings(&crate::settings(&[]))?;

    let step = (names.len() / COLD_NAMES).max(1);
    let listed: Vec<&String> = names.iter().step_by(step).take(COLD_NAMES).collect();
    let blocked_cold = query_frames(listed.iter().map(|n| n.to_string()));
    let blocked_warm = vec![blocked_cold[blocked_cold.len() / 2].clone()];
    // Other listed names with their first label changed: not listed, with parents of the
    // same shape (as many suffixes to look up), but not those of the blocked set, which
    // would come warm from its batch.
    let others = names.iter().skip(step / 2).step_by(step).take(COLD_NAMES);
    let allowed_cold = query_frames(others.map(|n| format!("p{n}")));
    // Warm, the blocked name with its first label changed: the same suffixes.
    let allowed_warm = query_frames(std::iter::once(format!("p{}", listed[listed.len() / 2])));
    let mut arp = vec![0xffu8; 6];
    arp.extend_from_slice(&frame::CLIENT_MAC);
    arp.extend_from_slice(&[0x08, 0x06]);
    arp.extend_from_slice(&[0u8; 28]);
    let other = {
        let q = frame::query("x.example.test.", hickory_proto::rr::RecordType::A, true);
        let spec = frame::Spec {
            dport: 5353,
            ..frame::Spec::v4()
        };
        vec![frame::frame(&spec, &q)]
    };
    let arp = vec![arp];
    const PASS: u32 = crate::XDP_PASS;
    const TX: u32 = crate::XDP_TX;
    // Four sets of names: blocked and allowed, warm and cold.
    let sets: [(&[Vec<u8>], u32); 4] = [
        (&blocked_warm, TX),
        (&blocked_cold, TX),
        (&allowed_warm, PASS),
        (&allowed_cold, PASS),
    ];
    let mut cases = vec![
        Case::new(&events, &arp, PASS),   // entry
        Case::new(&events, &other, PASS), // frame
    ];
    for (frames, _) in sets {
        cases.push(Case::new(&bare, frames, PASS)); // question: no table, the name passes
    }
    for (frames, action) in sets {
        cases.push(Case::new(&nolog, frames, action)); // lookup, and for a blocked name the reply
    }
    for (frames, action) in &sets[..2] {
        cases.push(Case::new(&events, frames, *action)); // and the log
    }
    let mut out = vec![0u8; 2048];
    for _ in 0..ROUNDS {
        for c in cases.iter_mut() {
            c.batch(&mut out)?;
            // The query log is read as the daemon reads it, so that it never fills up (a
            // full buffer drops events, which costs less than logging them).
            while ring.next().is_some() {}
        }
    }
    let ns: Vec<f64> = cases.iter().map(Case::mean).collect();
    let (entry, frame_) = (ns[0], ns[1]);
    let q = |i: usize| ns[2 + i];
    let l = |i: usize| ns[6 + i];
    // A blocked name's lookup is taken as an allowed one's of the same temperature (the
    // same suffixes, the same buckets read): the rest of its time is the reply's.
    let lookup = |i: usize| l(2 + i % 2) - q(2 + i % 2);
    let per_set = |f: &dyn Fn(usize) -> f64| [f(0), f(1), f(2), f(3)];
    let rows = vec![
        ("entry (an ARP frame)", [entry; 4]),
        ("frame: headers, port policy", [frame_ - entry; 4]),
        ("question: copy, check, walk", per_set(&|i| q(i) - frame_)),
        ("lookup: every suffix", per_set(&lookup)),
        (
            "reply: client check, answer, rewrite; and the listed name's buckets, which \
             an unlisted one's filter check skips",
            [l(0) - q(0) - lookup(0), l(1) - q(1) - lookup(1), 0.0, 0.0],
        ),
        ("log", [ns[10] - l(0), ns[11] - l(1), 0.0, 0.0]),
        ("total", [ns[10], ns[11], l(2), l(3)]),
    ];
    Ok(Stages { rows })
}

impl<'a> Case<'a> {
    fn new(sinkhole: &'a Sinkhole, frames: &'a [Vec<u8>], action: u32) -> Case<'a> {
        Case {
            sinkhole,
            frames,
            action,
            total_ns: 0,
            runs: 0,
        }
    }

    fn batch(&mut self, out: &mut [u8]) -> Result<()> {
        for i in 0..BATCH {
            let f = &self.frames[(self.runs as usize + i) % self.frames.len()];
            let r = self.sinkhole.program().test_run(TestRunOptions {
                data_in: Some(f),
                data_out: Some(out),
                repeat: 1,
                ..Default::default()
            })?;
            if r.return_value != self.action {
                bail!("test_run returned {}, not {}", r.return_value, self.action);
            }
            self.total_ns += r.duration.as_nanos();
        }
        self.runs += BATCH as u64;
        Ok(())
    }

    fn mean(&self) -> f64 {
        self.total_ns as f64 / self.runs as f64
    }
}

impl Stages {
    pub fn markdown(&self, rules: usize) -> String {
        let mut md = format!(
            "Stage breakdown, `test_run`, {rules} rules (ns per run; each stage the difference \
             between two inputs one stage apart):\n\n\
             | stage | blocked warm | blocked cold | allowed warm | allowed cold |\n|---|---|---|---|---|\n"
        );
        for (stage, v) in &self.rows {
            let cell = |v: f64| {
                if v == 0.0 {
                    String::new()
                } else {
                    format!("{v:.0}")
                }
            };
            md.push_str(&format!(
                "| {stage} | {} | {} | {} | {} |\n",
                cell(v[0]),
                cell(v[1]),
                cell(v[2]),
                cell(v[3])
            ));
        }
        md
    }
}
