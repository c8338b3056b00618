//! Shared pieces of the kernel integration tests.
//!
//! - [`frame`] builds query frames and checks answer frames byte by byte.
//! - [`lab`] makes network namespaces with veth links, starts real processes in them, and
//!   tears everything down on drop, even when a test fails.

pub mod frame;
pub mod lab;
pub mod stages;
pub mod tcp;

/// The XDP actions a program returns.
pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;
pub const XDP_TX: u32 = 3;

/// The kernel settings that `dnssink attach lo ARGS` makes, built as the daemon builds them
/// (`Plan::settings`), with `--clients any` unless ARGS name clients: a test's frames come
/// from 198.18.0.0/15 and 2001:db8::/32.
pub fn settings(args: &[&str]) -> dnssink::plan::Settings {
    settings_with(args, &dnssink::iplist::IpRules::default())
}

/// [`settings`], with the blocked destinations `ips` (which turn the policy on).
pub fn settings_with(args: &[&str], ips: &dnssink::iplist::IpRules) -> dnssink::plan::Settings {
    let mut argv = vec!["lo"];
    if !args.contains(&"--clients") {
        argv.extend(["--clients", "any"]);
    }
    argv.extend(args);
    dnssink::cli::AttachArgs::parse_plan(&argv)
        .and_then(|p| p.settings(ips, &Default::default()))
        .expect("a plan")
}

/// A list file holding `text`, removed when dropped.
pub fn list(text: &str) -> tempfile::NamedTempFile {
    use std::io::Write as _;
    let mut f = tempfile::NamedTempFile::new().expect("a temporary file");
    f.write_all(text.as_bytes())
        .expect("writing a temporary file");
    f
}

/// The path of a file made by [`list`], for a command line.
pub fn path(f: &tempfile::NamedTempFile) -> &str {
    f.path().to_str().expect("a UTF-8 temporary path")
}

/// Path of a file under the workspace's `../shared/blocklists/`.
pub fn shared_list(name: &str) -> std::path::PathBuf {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/blocklists")
        .join(name);
    p.canonicalize().unwrap_or(p)
}

/// Runs the loaded XDP program once on `input` through BPF_PROG_TEST_RUN: its action and the
/// frame it leaves.
pub fn test_run(s: &dnssink::bpf::Sinkhole, input: &[u8]) -> (u32, Vec<u8>) {
    run_program(s.program(), input)
}

/// Runs a loaded program once on `input` through BPF_PROG_TEST_RUN.
pub fn run_program<P>(p: &P, input: &[u8]) -> (u32, Vec<u8>)
where
    P: for<'a> aya::programs::TestRun<
            Opts<'a> = aya::programs::TestRunOptions<'a>,
            Result = aya::programs::TestRunResult,
        >,
{
    use aya::programs::TestRunOptions;
    let mut out = vec![0u8; 4096];
    let r = p
        .test_run(TestRunOptions {
            data_in: Some(input),
            data_out: Some(&mut out),
            ..Default::default()
        })
        .expect("test_run");
    out.truncate(r.data_size_out as usize);
    (r.return_value, out)
}
