//! `cargo xtask setup | test | demo`: the project's commands, runnable on a fresh machine.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

mod cross;
mod kernels;

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install what building and testing need; does nothing when all of it is there.
    Setup,
    /// Every test: fmt, clippy, host unit tests and the kernel integration tests (as root).
    Test,
    /// Build a lab of network namespaces, attach dnssink, and show real queries.
    Demo,
    /// Measure load time and memory beside dnsmasq; writes target/bench/report.{md,json}.
    Bench {
        /// A reduced set (up to 1M rules).
        #[arg(long)]
        quick: bool,
    },
    /// Release build, man pages, shell completions, systemd unit and example config, in
    /// target/dist/; with --target, a static binary for that target in target/dist/TARGET/.
    Dist {
        /// x86_64-unknown-linux-musl, aarch64-unknown-linux-musl or
        /// armv7-unknown-linux-gnueabihf (static); may be given more than once.
        #[arg(long)]
        target: Vec<String>,
    },
    /// Build every static target and check, under qemu-user, that each prints what the
    /// host's build prints (--help, check-config, query over every shared list).
    Cross,
    /// Run every fuzz target (cargo-fuzz, nightly) from its committed seed corpus.
    /// Boot the program in qemu on other kernels (Debian's 6.1 and 6.12) and run the
    /// test_run suites there.
    Kernels {
        /// The guests' architecture: amd64 (Debian 11 to 13), or arm64 (Debian 12 and 13,
        /// the static aarch64 build).
        #[arg(long, value_enum, default_value = "amd64")]
        arch: kernels::Arch,
    },
    Fuzz {
        /// Seconds per target.
        #[arg(long, default_value_t = 60)]
        time: u64,
    },
}

/// Debian packages: LLVM 22 for bpf-linker, and the tools the tests and the demo run.
const PACKAGES: &[&str] = &[
    "llvm-22-dev",
    "libpolly-22-dev",
    "dnsutils",
    "dnsmasq-base",
    "unbound",
    "bpftool",
    "iproute2",
    "ethtool",
    "tcpdump",
    "knot-dnsutils",
    "dnsperf",
    "util-linux",
    "curl",
    "systemd",
];
const BPF_LINKER: &str = "0.13";

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Setup => setup(),
        Cmd::Test => test(),
        Cmd::Demo => demo(),
        Cmd::Bench { quick } => bench(quick),
        Cmd::Dist { target } if target.is_empty() => dist(),
        Cmd::Dist { target } => dist_targets(&target).map(|_| ()),
        Cmd::Cross => cross(),
        Cmd::Fuzz { time } => fuzz(time),
        Cmd::Kernels { arch } => ensure_setup()
            .and_then(|_| ensure_root("cargo xtask kernels"))
            .and_then(|_| kernels::kernels(arch)),
    };
    if let Err(e) = result {
        eprintln!("xtask: error: {e:#}");
        std::process::exit(1);
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

fn run(what: &str, cmd: &mut Command) -> Result<()> {
    println!("==> {what}");
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn missing_packages() -> Vec<&'static str> {
    let mut p = not_installed(PACKAGES);
    p.extend(not_installed(cross::PACKAGES));
    p
}

/// The Debian packages of `packages` that are not installed.
fn not_installed(packages: &[&'static str]) -> Vec<&'static str> {
    packages
        .iter()
        .copied()
        .filter(|p| {
            output(Command::new("dpkg-query").args(["-W", "-f=${Status}", p]))
                .is_none_or(|s| !s.contains("install ok installed"))
        })
        .collect()
}

/// Installs Debian packages.
fn apt_install(packages: &[&str]) -> Result<()> {
    run(
        &format!("apt-get install {}", packages.join(" ")),
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

fn has_rust_src() -> bool {
    output(Command::new("rustup").args([
        "component",
        "list",
        "--toolchain",
        "nightly",
        "--installed",
    ]))
    .is_some_and(|s| s.lines().any(|l| l.starts_with("rust-src")))
}

fn has_bpf_linker() -> bool {
    output(Command::new("bpf-linker").arg("--version"))
        .is_some_and(|s| s.contains(&format!("bpf-linker {BPF_LINKER}")))
}

fn setup_needed() -> bool {
    !missing_packages().is_empty()
        || !has_rust_src()
        || !has_bpf_linker()
        || !cross::missing_rust_targets().is_empty()
}

fn setup() -> Result<()> {
    let missing = missing_packages();
    if missing.is_empty() {
        println!("==> Debian packages: all there");
    } else {
        run(
            "apt-get update",
            Command::new("apt-get").args(["update", "-qq"]),
        )?;
        apt_install(&missing)?;
    }
    if has_rust_src() {
        println!("==> rust-src for nightly: there");
    } else {
        run(
            "rustup component add rust-src --toolchain nightly",
            Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", "nightly"]),
        )
        .context("the BPF crate builds with the nightly toolchain and its rust-src")?;
    }
    let targets = cross::missing_rust_targets();
    if targets.is_empty() {
        println!("==> rust targets for the static builds: there");
    } else {
        run(
            &format!("rustup target add {}", targets.join(" ")),
            Command::new("rustup")
                .args(["target", "add"])
                .args(&targets),
        )?;
    }
    if has_bpf_linker() {
        println!("==> bpf-linker {BPF_LINKER}: there");
    } else {
        run(
            &format!("cargo install bpf-linker {BPF_LINKER} (LLVM 22; takes about 4 minutes)"),
            cargo()
                .args([
                    "install",
                    "bpf-linker",
                    "--version",
                    &format!("~{BPF_LINKER}"),
                ])
                .args(["--no-default-features", "--features", "llvm-22", "--locked"])
                .env("LLVM_PREFIX", "/usr/lib/llvm-22"),
        )?;
    }
    Ok(())
}

fn ensure_setup() -> Result<()> {
    if setup_needed() {
        println!("==> something is missing: running setup");
        setup()?;
    }
    Ok(())
}

fn ensure_root(what: &str) -> Result<()> {
    let uid = output(Command::new("id").arg("-u")).unwrap_or_default();
    if uid.trim() != "0" {
        bail!("{what} loads BPF programs and makes network namespaces: run it as root");
    }
    Ok(())
}

fn test() -> Result<()> {
    ensure_setup()?;
    ensure_root("cargo xtask test")?;
    run(
        "cargo fmt --check",
        cargo().args(["fmt", "--all", "--check"]),
    )?;
    run(
        "cargo clippy (userspace crates) -D warnings",
        cargo().args([
            "clippy",
            "--workspace",
            "--exclude",
            "dnssink-ebpf",
            "--exclude",
            "dnssink-lab-ebpf",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    run(
        "build dnssink",
        cargo().args(["build", "--package", "dnssink", "--bins"]),
    )?;
    let mut total = Counts::default();
    let mut stages = Vec::new();
    for (what, packages) in [
        ("host unit tests", &["dnssink-common", "dnssink"][..]),
        (
            "kernel integration tests (test_run and netns labs)",
            &["dnssink-tests"][..],
        ),
    ] {
        let mut cmd = cargo();
        cmd.args(["test", "--lib", "--bins", "--tests"]);
        for p in packages {
            cmd.args(["--package", p]);
        }
        stages.push((what, cmd));
    }
    // The program as old kernels get it (no bpf_xdp_load_bytes before 5.18, the branch-free
    // name walk where the verifier refuses the other, as 6.1's does): the same test_run
    // suites, on this kernel.
    let mut cmd = cargo();
    cmd.args(["test", "--package", "dnssink-tests"]);
    for s in kernels::SUITES {
        cmd.args(["--test", s]);
    }
    cmd.env("DNSSINK_COMPAT", "1");
    stages.push((
        "test_run suites, loaded as for an old kernel (DNSSINK_COMPAT)",
        cmd,
    ));
    for (what, mut cmd) in stages {
        let result = run_tests(what, &mut cmd, &mut total);
        if result.is_err() {
            println!(
                "test: {} passed, {} failed",
                total.passed,
                total.failed.max(1)
            );
            return result;
        }
    }
    println!("test: {} passed, {} failed", total.passed, total.failed);
    Ok(())
}

#[derive(Default)]
struct Counts {
    passed: usize,
    failed: usize,
}

/// Runs `cargo test`, echoing its output and adding its `test result:` lines to `counts`.
fn run_tests(what: &str, cmd: &mut Command, counts: &mut Counts) -> Result<()> {
    use std::io::{BufRead as _, BufReader};
    println!("==> {what}");
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("running {cmd:?}"))?;
    let stdout = child.stdout.take().context("no stdout")?;
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        println!("{line}");
        // test result: ok. 13 passed; 0 failed; 0 ignored; ...
        if let Some(rest) = line.strip_prefix("test result: ") {
            for field in rest.split(';') {
                let mut words = field.split_whitespace().rev();
                let (Some(key), Some(n)) = (words.next(), words.next()) else {
                    continue;
                };
                let n: usize = n.parse().unwrap_or(0);
                match key {
                    "passed" => counts.passed += n,
                    "failed" => counts.failed += n,
                    _ => {}
                }
            }
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

fn demo() -> Result<()> {
    ensure_setup()?;
    ensure_root("cargo xtask demo")?;
    run(
        "build dnssink",
        cargo().args(["build", "--quiet", "--package", "dnssink", "--bins"]),
    )?;
    run(
        "demo",
        cargo().args([
            "run",
            "--quiet",
            "--package",
            "dnssink-tests",
            "--bin",
            "dnssink-demo",
        ]),
    )
}

fn build_release() -> Result<()> {
    run(
        "build dnssink (release)",
        cargo().args([
            "build",
            "--quiet",
            "--release",
            "--package",
            "dnssink",
            "--bins",
        ]),
    )
}

fn bench(quick: bool) -> Result<()> {
    ensure_setup()?;
    ensure_root("cargo xtask bench")?;
    build_release()?;
    let mut cmd = cargo();
    cmd.args([
        "run",
        "--quiet",
        "--release",
        "--package",
        "dnssink-tests",
        "--bin",
        "dnssink-bench",
    ]);
    if quick {
        cmd.args(["--", "--quick"]);
    }
    run("bench", &mut cmd)
}

fn dist() -> Result<()> {
    ensure_setup()?;
    build_release()?;
    let out = root().join("target/dist");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out)?;
    let release = root().join("target/release");
    run(
        "man pages and completions",
        Command::new(release.join("dnssink-dist")).arg(&out),
    )?;
    for (from, to) in [
        (release.join("dnssink"), "dnssink"),
        (root().join("dist/dnssink.service"), "dnssink.service"),
        (root().join("dist/dnssink.toml"), "dnssink.toml"),
    ] {
        std::fs::copy(&from, out.join(to))
            .with_context(|| format!("copying {}", from.display()))?;
    }
    println!("==> {}:", out.display());
    for e in walk(&out)? {
        println!("    {}", e.strip_prefix(&out).unwrap_or(&e).display());
    }
    Ok(())
}

/// Static binaries for `triples`, in target/dist/TRIPLE/dnssink.
fn dist_targets(triples: &[String]) -> Result<Vec<PathBuf>> {
    ensure_setup()?;
    let targets = triples
        .iter()
        .map(|t| cross::target(t))
        .collect::<Result<Vec<_>>>()?;
    targets.into_iter().map(cross::build).collect()
}

fn cross() -> Result<()> {
    ensure_setup()?;
    build_release()?;
    let all: Vec<String> = cross::TARGETS
        .iter()
        .map(|t| t.triple.to_string())
        .collect();
    dist_targets(&all)?;
    cross::differential(400)
}

fn walk(dir: &std::path::Path) -> Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            out.extend(walk(&p)?);
        } else {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// The fuzz targets, in `fuzz/fuzz_targets/`.
const FUZZ_TARGETS: &[&str] = &["query", "lists", "iplist"];

fn fuzz(time: u64) -> Result<()> {
    ensure_setup()?;
    let nightly = || {
        let mut c = Command::new("rustup");
        c.args(["run", "nightly", "cargo"]).current_dir(root());
        c
    };
    if output(nightly().args(["fuzz", "--version"])).is_none() {
        run(
            "cargo install cargo-fuzz",
            Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]),
        )?;
    }
    let mut total = 0u64;
    let mut report = Vec::new();
    for target in FUZZ_TARGETS {
        let work = root().join("target/fuzz-corpus").join(target);
        std::fs::create_dir_all(&work)?;
        let seeds = root().join("fuzz/corpus").join(target);
        println!("==> fuzz {target} for {time}s");
        // New inputs go to target/fuzz-corpus; the committed seeds are only read.
        let out = nightly()
            .args(["fuzz", "run", "--fuzz-dir", "fuzz", target])
            .arg(&work)
            .arg(&seeds)
            .args([
                "--",
                &format!("-max_total_time={time}"),
                "-rss_limit_mb=1024",
                "-timeout=10",
                "-print_final_stats=1",
            ])
            .env("DNSSINK_NO_BPF", "1")
            .stderr(std::process::Stdio::piped())
            .output()
            .context("running cargo fuzz")?;
        let err = String::from_utf8_lossy(&out.stderr);
        let stat = |name: &str| {
            err.lines()
                .find_map(|l| l.strip_prefix(&format!("stat::{name}:")))
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        if !out.status.success() {
            let tail: Vec<&str> = err.lines().rev().take(60).collect();
            for l in tail.into_iter().rev() {
                eprintln!("{l}");
            }
            bail!("fuzz target {target} failed: its crash input is under fuzz/artifacts/{target}/");
        }
        let execs = stat("number_of_executed_units").unwrap_or(0);
        total += execs;
        let line = format!(
            "{target}: {execs} executions, peak RSS {} MB, corpus {} inputs",
            stat("peak_rss_mb").unwrap_or(0),
            std::fs::read_dir(&work)?.count()
        );
        println!("    {line}");
        report.push(line);
    }
    println!("fuzz: {total} executions in all, no crash");
    std::fs::write(
        root().join("target/fuzz-report.txt"),
        format!("{}\ntotal: {total} executions\n", report.join("\n")),
    )?;
    Ok(())
}
