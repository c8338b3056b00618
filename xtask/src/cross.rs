//! `cargo xtask dist --target T` and `cargo xtask cross`: static dnssink binaries for routers,
//! and a differential test of them under qemu-user against the host's build.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail, ensure};

use crate::{cargo, output, root, run};

/// A target dnssink is built for, and how.
pub struct Target {
    pub triple: &'static str,
    /// The linker: rust-lld with the target's own musl (self-contained), or a cross gcc.
    linker: &'static str,
    rustflags: &'static str,
    /// The qemu-user that runs its binaries here (None: the host runs them).
    pub qemu: Option<&'static str>,
}

/// The router targets. armv7 is built against glibc, linked statically: rustup's mirror here
/// has no `armv7-unknown-linux-musleabihf` standard library (404). A static binary needs no
/// libc on the router, and dnssink looks up no host names (glibc's NSS, which static glibc
/// cannot load).
pub const TARGETS: &[Target] = &[
    Target {
        triple: "x86_64-unknown-linux-musl",
        linker: "rust-lld",
        rustflags: "",
        qemu: None,
    },
    Target {
        triple: "aarch64-unknown-linux-musl",
        linker: "rust-lld",
        rustflags: "",
        qemu: Some("qemu-aarch64-static"),
    },
    Target {
        triple: "armv7-unknown-linux-gnueabihf",
        linker: "arm-linux-gnueabihf-gcc",
        rustflags: "-C target-feature=+crt-static",
        qemu: Some("qemu-arm-static"),
    },
];

/// Debian packages the cross builds and their tests need.
pub const PACKAGES: &[&str] = &[
    "qemu-user-static",
    "gcc-arm-linux-gnueabihf",
    "libc6-dev-armhf-cross",
];

/// The target called `triple`.
pub fn target(triple: &str) -> Result<&'static Target> {
    TARGETS
        .iter()
        .find(|t| t.triple == triple)
        .with_context(|| {
            let known: Vec<&str> = TARGETS.iter().map(|t| t.triple).collect();
            format!(
                "--target {triple}: not a dist target (one of {})",
                known.join(", ")
            )
        })
}

/// The rustup targets that are missing.
pub fn missing_rust_targets() -> Vec<&'static str> {
    let installed =
        output(Command::new("rustup").args(["target", "list", "--installed"])).unwrap_or_default();
    TARGETS
        .iter()
        .map(|t| t.triple)
        .filter(|t| !installed.lines().any(|l| l.trim() == *t))
        .collect()
}

impl Target {
    /// Sets `cmd`'s linker and flags for this target (cargo's per-target variables, which
    /// leave build scripts alone).
    pub fn configure(&self, cmd: &mut Command) {
        let env = self.triple.to_uppercase().replace('-', "_");
        cmd.env(format!("CARGO_TARGET_{env}_LINKER"), self.linker)
            .env(format!("CARGO_TARGET_{env}_RUSTFLAGS"), self.rustflags);
    }
}

/// Builds the static binary for `t` (the `dist` profile: LTO, stripped, panic = abort) and
/// returns its path under target/dist/.
pub fn build(t: &Target) -> Result<PathBuf> {
    let env = t.triple.to_uppercase().replace('-', "_");
    run(
        &format!("build dnssink for {}", t.triple),
        cargo()
            .args([
                "build",
                "--quiet",
                "--profile",
                "dist",
                "--package",
                "dnssink",
            ])
            .args(["--bin", "dnssink", "--target", t.triple])
            .env(format!("CARGO_TARGET_{env}_LINKER"), t.linker)
            .env(format!("CARGO_TARGET_{env}_RUSTFLAGS"), t.rustflags),
    )?;
    let built = root().join("target").join(t.triple).join("dist/dnssink");
    let out = root().join("target/dist").join(t.triple);
    std::fs::create_dir_all(&out)?;
    let to = out.join("dnssink");
    std::fs::copy(&built, &to).with_context(|| format!("copying {}", built.display()))?;
    let size = std::fs::metadata(&to)?.len();
    println!(
        "==> {}: {} bytes ({:.1} MiB)",
        to.display(),
        size,
        size as f64 / 1048576.0
    );
    Ok(to)
}

/// What a binary prints for `args` (its exit status, stdout and stderr), run natively or
/// under its qemu-user.
fn outcome(t: Option<&Target>, bin: &Path, args: &[String]) -> Result<String> {
    let mut cmd = match t.and_then(|t| t.qemu) {
        Some(q) => {
            let mut c = Command::new(q);
            c.arg(bin);
            c
        }
        None => Command::new(bin),
    };
    let out = cmd
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    Ok(format!(
        "{}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// Names to ask about a list: a spread of its own names, a name below and the parent of each,
/// and names it surely lacks.
fn names(list: &Path, per_list: usize) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(list)?;
    let found: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|l| {
            // The longest run of name characters with a dot in it: `||a.b^`, `0.0.0.0 a.b`,
            // `address=/a.b/#`, `*.a.b` and plain `a.b` all give `a.b`.
            l.split(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_'))
                .map(|s| s.trim_matches('.'))
                .filter(|s| s.contains('.') && s.parse::<std::net::IpAddr>().is_err())
                .max_by_key(|s| s.len())
                .map(str::to_lowercase)
        })
        .collect();
    let step = (found.len() / per_list).max(1);
    let mut out = vec![
        "not-listed.invalid".to_string(),
        "example.com".to_string(),
        "www.example.com".to_string(),
    ];
    for n in found.iter().step_by(step).take(per_list) {
        out.push(n.clone());
        out.push(format!("x.{n}"));
        if let Some((_, parent)) = n.split_once('.') {
            out.push(parent.to_string());
        }
    }
    Ok(out)
}

/// The differential test: each cross build under qemu-user prints what the host's build
/// prints, for `--help`, `check-config` of the example config, and `query` over every list
/// in ../shared/blocklists/.
pub fn differential(per_list: usize) -> Result<()> {
    let host = root().join("target/release/dnssink");
    let lists_dir = root().join("../shared/blocklists");
    let mut lists: Vec<PathBuf> = std::fs::read_dir(&lists_dir)
        .with_context(|| format!("reading {}", lists_dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    lists.retain(|p| p.extension().is_some_and(|e| e == "txt"));
    lists.sort();
    ensure!(!lists.is_empty(), "no lists in {}", lists_dir.display());
    // A config that checks, and one with a misspelt key, which must fail alike.
    let dir = root().join("target/dist/cross");
    std::fs::create_dir_all(&dir)?;
    let list = lists_dir.join("stevenblack.domains.txt");
    let good = dir.join("good.toml");
    let bad = dir.join("bad.toml");
    std::fs::write(
        &good,
        format!(
            "blocklist = [{:?}]\nresponse = \"null\"\n\n[[interface]]\nname = \"eth1\"\n\
             resolver = [\"198.18.0.1\"]\n",
            list.display().to_string()
        ),
    )?;
    std::fs::write(&bad, "blocklst = []\n\n[[interface]]\nname = \"eth1\"\n")?;
    let check = |f: &Path| {
        vec![
            "check-config".to_string(),
            "--config".into(),
            f.display().to_string(),
        ]
    };
    let mut cases: Vec<(String, Vec<String>)> = vec![
        ("--help".into(), vec!["--help".into()]),
        (
            "attach --help".into(),
            vec!["attach".into(), "--help".into()],
        ),
        ("check-config".into(), check(&good)),
        ("check-config, a bad key".into(), check(&bad)),
    ];
    for list in &lists {
        let file = list
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let mut args = vec![
            "query".into(),
            "--blocklist".into(),
            list.display().to_string(),
        ];
        args.extend(names(list, per_list)?);
        cases.push((format!("query, {file}"), args));
    }
    let mut failed = Vec::new();
    for t in TARGETS {
        let bin = root().join("target/dist").join(t.triple).join("dnssink");
        ensure!(
            bin.exists(),
            "{} is not built: cargo xtask dist --target {}",
            bin.display(),
            t.triple
        );
        let (mut names, mut blocked) = (0, 0);
        for (what, args) in &cases {
            let want = outcome(None, &host, args)?;
            let got = outcome(Some(t), &bin, args)?;
            if got != want {
                let line = want
                    .lines()
                    .zip(got.lines())
                    .find(|(a, b)| a != b)
                    .map(|(a, b)| format!("host: {a}\n    {}: {b}", t.triple))
                    .unwrap_or_else(|| "one output is a prefix of the other".into());
                failed.push(format!("{} {what}:\n    {line}", t.triple));
            }
            if what.starts_with("query, ") {
                // The first line is the exit status; a name's verdict is `name: verdict`.
                let verdicts = || want.lines().skip(1).filter(|l| !l.starts_with(' '));
                names += verdicts().count();
                blocked += verdicts().filter(|l| l.ends_with(": blocked")).count();
            }
        }
        println!(
            "==> {} under {}: {} cases, {names} names ({blocked} blocked), {}",
            t.triple,
            t.qemu.unwrap_or("the host"),
            cases.len(),
            if failed.is_empty() {
                "the same as the host's"
            } else {
                "DIFFERENT"
            }
        );
    }
    if !failed.is_empty() {
        bail!(
            "the cross builds differ from the host's:\n{}",
            failed.join("\n")
        );
    }
    Ok(())
}
