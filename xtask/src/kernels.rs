//! `cargo xtask kernels`: the program on other kernels. Each kernel is a Debian package
//! (`linux-image-*-amd64-unsigned`), booted in qemu with the host's root filesystem shared
//! read-only over 9p and a busybox initramfs that loads the 9p modules, with
//! `/sys/kernel/btf` hidden. In the guest run a real `dnssink attach` on the loopback
//! interface with a real list, then the `test_run` suites (`tests/xdp.rs`, `tests/tcp.rs`,
//! `tests/policy.rs`, `tests/props.rs`). One line per kernel: the verified instructions, the
//! verification time, and the suites passed. With `--arch arm64`, Debian's arm64 kernels
//! under qemu-system-aarch64 run the static aarch64 build and the suites cross-built for it.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail, ensure};

use crate::{cargo, output, root, run};

/// The kernel series to boot, as Debian names their packages: Debian 11, 12, 12's newer
/// kernel, and 13. The host's own kernel is tested by `cargo xtask test`. 5.10 has neither
/// `bpf_xdp_load_bytes` nor TCX, 6.1 no TCX: the program copies the message itself there, and
/// the TCP program goes in a tc filter.
const SERIES: &[(&str, &str)] = &[
    ("5.10", r"^linux-image-5\.10\.0-[0-9]+-amd64-unsigned$"),
    ("6.1", r"^linux-image-6\.1\.0-[0-9]+-amd64-unsigned$"),
    ("6.12", r"^linux-image-6\.12\.[0-9]+\+deb12-amd64-unsigned$"),
    ("6.12", r"^linux-image-6\.12\.[0-9]+\+deb13-amd64-unsigned$"),
];

/// The architecture of the guests: amd64 (the host's, its root shared with the guest), or
/// arm64 (the static aarch64 build and suites, under qemu-system-aarch64), which reaches the
/// arm64 BPF JIT that no x86 test does.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Arch {
    Amd64,
    Arm64,
}

impl Arch {
    fn deb(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }

    /// The kernel series to boot.
    fn series(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Arch::Amd64 => SERIES,
            Arch::Arm64 => SERIES_ARM64,
        }
    }
}

/// Debian 12's and 13's arm64 kernels.
const SERIES_ARM64: &[(&str, &str)] = &[
    ("6.1", r"^linux-image-6\.1\.0-[0-9]+-arm64-unsigned$"),
    ("6.12", r"^linux-image-6\.12\.[0-9]+\+deb13-arm64-unsigned$"),
];

/// The static aarch64 build the arm64 guests run.
const ARM64_TARGET: &str = "aarch64-unknown-linux-musl";

/// apt with a configuration of its own, under `target/kernels/apt`: a copy of the host's
/// Debian sources (bookworm and its updates), and bullseye and trixie from the same mirror.
/// The host's apt sources and state are never changed.
struct Apt {
    opts: Vec<String>,
}

impl Apt {
    fn new(dir: &Path, arch: Arch) -> Result<Apt> {
        let d = match arch {
            Arch::Amd64 => dir.join("apt"),
            Arch::Arm64 => dir.join("apt-arm64"),
        };
        for sub in ["state/lists/partial", "cache/archives/partial", "etc/parts"] {
            std::fs::create_dir_all(d.join(sub))?;
        }
        let deb822 = Path::new("/etc/apt/sources.list.d/debian.sources");
        let classic = Path::new("/etc/apt/sources.list");
        let (host, uri) = if deb822.exists() {
            let text = std::fs::read_to_string(deb822)?;
            let uri = text
                .lines()
                .find_map(|l| l.strip_prefix("URIs:"))
                .and_then(|u| u.split_whitespace().next())
                .map(str::to_string);
            (("debian.sources", text), uri)
        } else {
            let text = std::fs::read_to_string(classic).unwrap_or_default();
            let uri = text
                .lines()
                .find_map(|l| l.strip_prefix("deb "))
                .and_then(|l| l.split_whitespace().find(|w| w.contains("://")))
                .map(str::to_string);
            (("host.list", text), uri)
        };
        let uri = uri.context("no Debian mirror in the host's apt sources")?;
        std::fs::write(d.join("etc/parts").join(host.0), host.1)?;
        let keyring = "/usr/share/keyrings/debian-archive-keyring.gpg";
        let extra: String = ["bullseye", "trixie"]
            .iter()
            .map(|suite| format!("deb [signed-by={keyring}] {uri} {suite} main\n"))
            .collect();
        std::fs::write(d.join("etc/sources.list"), extra)?;
        let path = |p: &str| d.join(p).display().to_string();
        let opts = [
            format!("Dir::Etc::sourcelist={}", path("etc/sources.list")),
            format!("Dir::Etc::sourceparts={}", path("etc/parts")),
            format!("Dir::State={}", path("state")),
            format!("Dir::Cache={}", path("cache")),
            "Dir::State::status=/var/lib/dpkg/status".to_string(),
            "Acquire::Languages=none".to_string(),
            format!("APT::Architectures={}", arch.deb()),
            format!("APT::Architecture={}", arch.deb()),
        ]
        .into_iter()
        .flat_map(|o| ["-o".to_string(), o])
        .collect();
        let apt = Apt { opts };
        run(
            "apt-get update (private configuration)",
            apt.cmd("apt-get").args(["update", "-qq"]),
        )?;
        Ok(apt)
    }

    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.args(&self.opts);
        c
    }
}

/// What the guest needs on top of the build tools.
const PACKAGES: &[&str] = &[
    "qemu-system-x86",
    "qemu-system-arm",
    "busybox-static",
    "xz-utils",
    "cpio",
    "kmod",
];

/// The test_run suites that run in each guest.
pub const SUITES: &[&str] = &["xdp", "tcp", "policy", "props"];

pub fn kernels(arch: Arch) -> Result<()> {
    let missing = crate::not_installed(PACKAGES);
    if !missing.is_empty() {
        crate::apt_install(&missing)?;
    }
    let dir = root().join("target/kernels");
    std::fs::create_dir_all(&dir)?;
    let apt = Apt::new(&dir, arch)?;
    let (bin, suites, busybox) = match arch {
        Arch::Amd64 => {
            run(
                "build dnssink",
                cargo().args(["build", "--quiet", "--package", "dnssink", "--bins"]),
            )?;
            let bin = root().join("target/debug/dnssink");
            (bin, test_binaries(None)?, PathBuf::from("/bin/busybox"))
        }
        Arch::Arm64 => {
            let bin = crate::cross::build(crate::cross::target(ARM64_TARGET)?)?;
            let busybox = fetch_busybox(&dir, &apt)?;
            (bin, test_binaries(Some(ARM64_TARGET))?, busybox)
        }
    };
    let mut results = Vec::new();
    let host = output(Command::new("uname").arg("-r")).unwrap_or_default();
    for (series, pattern) in arch.series() {
        let kernel = fetch(&dir, &apt, pattern).with_context(|| format!("Linux {series}"))?;
        let initrd = initramfs(&dir, &kernel, arch, &bin, &busybox, &suites)?;
        println!("==> boot {} ({series})", kernel.release);
        let log_path = dir.join(format!("{}.log", kernel.release));
        println!("    console: {}", log_path.display());
        let log = boot(&kernel, arch, &initrd, &log_path)?;
        let ok = log.lines().any(|l| l.trim() == "DNSSINK-RESULT 0");
        // The attach's debug lines, cut to what follows the target (`dnssink::bpf: `).
        let after = |key: &str| {
            log.lines()
                .find_map(|l| l.trim().strip_prefix(key))
                .map(|s| s.trim().to_string())
        };
        let count = |s: Option<String>| {
            s.and_then(|s| {
                s.split(" instructions verified")
                    .next()
                    .and_then(|s| s.rsplit(' ').next())
                    .map(|n| match n {
                        // Before 5.16 the kernel does not report the count.
                        "0" => "(not reported)".to_string(),
                        n => n.to_string(),
                    })
            })
            .unwrap_or_else(|| "-".into())
        };
        let has = |key: &str| log.lines().any(|l| l.contains(key));
        let figures = format!(
            "verified XDP {} / TCP {} instructions in {}; {}; {}; TCP program {}; {}",
            count(after("program loaded: ")),
            count(after("TCP program loaded: ")),
            after("programs verified in ").unwrap_or_else(|| "-".into()),
            if has("load_bytes: true") {
                "bpf_xdp_load_bytes"
            } else {
                "no bpf_xdp_load_bytes"
            },
            if has("refuses the name walk") {
                "branch-free name walk"
            } else {
                "branching name walk"
            },
            if has("no TCX on this kernel") {
                "in a tc filter"
            } else {
                "as a TCX link"
            },
            log.lines()
                .find_map(|l| l.split("DNSSINK-BTF ").nth(1))
                .map_or("BTF ?".into(), |b| format!("kernel BTF {}", b.trim())),
        );
        let tests: Vec<String> = log
            .lines()
            .filter(|l| l.starts_with("test result:"))
            .map(|l| l.split(';').next().unwrap_or(l).to_string())
            .collect();
        let passed = tests.iter().filter(|t| t.contains(" ok.")).count();
        let line = format!(
            "{}: {}; {figures}; suites passed {passed}/{} ({})",
            kernel.release,
            if ok { "passed" } else { "FAILED" },
            SUITES.len(),
            tests.join(" | ")
        );
        println!("    {line}");
        if !ok {
            for l in log
                .lines()
                .rev()
                .take(40)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
            {
                println!("    | {l}");
            }
        }
        results.push((ok, line));
    }
    println!(
        "kernels: {} (host) tested by `cargo xtask test`",
        host.trim()
    );
    for (_, line) in &results {
        println!("kernels: {line}");
    }
    ensure!(
        results.iter().all(|r| r.0),
        "a kernel failed; its serial log is in target/kernels/"
    );
    Ok(())
}

/// The test binaries of the suites, built now (for `target`, statically, else the host).
fn test_binaries(target: Option<&str>) -> Result<Vec<PathBuf>> {
    let mut cmd = cargo();
    cmd.args([
        "test",
        "--package",
        "dnssink-tests",
        "--no-run",
        "--message-format=json",
    ]);
    if let Some(t) = target {
        crate::cross::target(t)?.configure(&mut cmd);
        cmd.args(["--target", t]);
    }
    for s in SUITES {
        cmd.args(["--test", s]);
    }
    let out = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("building the test_run suites")?;
    ensure!(out.status.success(), "building the test_run suites failed");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut bins = Vec::new();
    for suite in SUITES {
        let line = text
            .lines()
            .find(|l| {
                l.contains(&format!("\"name\":\"{suite}\""))
                    && l.contains("\"kind\":[\"test\"]")
                    && l.contains("\"executable\":\"")
            })
            .with_context(|| format!("no test binary for {suite}"))?;
        let exe = line
            .split("\"executable\":\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .context("no executable")?;
        bins.push(PathBuf::from(exe));
    }
    Ok(bins)
}

struct Kernel {
    release: String,
    vmlinuz: PathBuf,
    modules: PathBuf,
}

/// The newest package matching `pattern`, downloaded and unpacked once into `dir`.
fn fetch(dir: &Path, apt: &Apt, pattern: &str) -> Result<Kernel> {
    let list = output(
        apt.cmd("apt-cache")
            .args(["search", "--names-only", pattern]),
    )
    .context("apt-cache search")?;
    let mut names: Vec<&str> = list.lines().filter_map(|l| l.split(" - ").next()).collect();
    names.sort_by_key(|n| version_key(n));
    let name = *names
        .last()
        .with_context(|| format!("no package matches {pattern}"))?;
    let unpacked = dir.join(name);
    if !unpacked.join("boot").exists() {
        download(dir, apt, name, &unpacked)?;
    }
    let vmlinuz = std::fs::read_dir(unpacked.join("boot"))?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vmlinuz-"))
        })
        .context("no vmlinuz in the package")?;
    let release = vmlinuz
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("vmlinuz-"))
        .context("kernel release")?
        .to_string();
    // A merged-/usr package (trixie) has its modules in usr/lib/modules; depmod and the
    // initramfs look in lib/modules.
    if !unpacked.join("lib").exists() && unpacked.join("usr/lib/modules").exists() {
        std::os::unix::fs::symlink("usr/lib", unpacked.join("lib"))?;
    }
    let modules = unpacked.join("lib/modules").join(&release);
    if !modules.join("modules.dep").exists() {
        // The package leaves modules.dep to the install; this is no install.
        run(
            "depmod",
            Command::new("depmod")
                .arg("-b")
                .arg(&unpacked)
                .arg(&release),
        )?;
    }
    Ok(Kernel {
        release,
        vmlinuz,
        modules,
    })
}

/// Downloads package `name` with `apt` into `dir`, unpacks it into `into`, and removes the
/// package file.
fn download(dir: &Path, apt: &Apt, name: &str, into: &Path) -> Result<()> {
    run(
        &format!("apt-get download {name}"),
        apt.cmd("apt-get").args(["download", name]).current_dir(dir),
    )?;
    let deb = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{name}_")) && n.ends_with(".deb"))
        })
        .with_context(|| format!("the downloaded {name}"))?;
    run(
        "unpack",
        Command::new("dpkg-deb").arg("-x").arg(&deb).arg(into),
    )?;
    std::fs::remove_file(deb)?;
    Ok(())
}

/// busybox-static for the guests' architecture, from `apt`'s mirror, unpacked once.
fn fetch_busybox(dir: &Path, apt: &Apt) -> Result<PathBuf> {
    let unpacked = dir.join("busybox-arm64");
    // /bin before the /usr merge (bookworm), /usr/bin after (trixie).
    let found = || {
        ["bin/busybox", "usr/bin/busybox"]
            .iter()
            .map(|p| unpacked.join(p))
            .find(|p| p.is_file())
    };
    if found().is_none() {
        download(dir, apt, "busybox-static", &unpacked)?;
    }
    found().context("no busybox in busybox-static")
}

/// Numbers in a package name, for ordering versions.
fn version_key(name: &str) -> Vec<u64> {
    name.split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// A busybox initramfs that loads the 9p modules, mounts the host's root read-only, and runs
/// the suites in it.
fn initramfs(
    dir: &Path,
    k: &Kernel,
    arch: Arch,
    bin: &Path,
    busybox: &Path,
    suites: &[PathBuf],
) -> Result<PathBuf> {
    let tree = dir.join(format!("initramfs-{}", k.release));
    let _ = std::fs::remove_dir_all(&tree);
    for d in ["bin", "proc", "sys", "dev", "mnt", "modules", "tmp", "run"] {
        std::fs::create_dir_all(tree.join(d))?;
    }
    std::fs::copy(busybox, tree.join("bin/busybox")).context("busybox-static")?;
    // The modules for virtio-pci and 9p, dependencies first, from modules.dep.
    let deps = std::fs::read_to_string(k.modules.join("modules.dep"))?;
    let mut order: Vec<String> = Vec::new();
    // The tc filter's qdisc and classifier, for the TCP program where there is no TCX.
    for want in ["virtio_pci", "9pnet_virtio", "9p", "sch_ingress", "cls_bpf"] {
        add_module(&deps, want, &mut order);
    }
    let mut names = Vec::new();
    for m in &order {
        let src = k.modules.join(m);
        let base = Path::new(m)
            .file_name()
            .and_then(|n| n.to_str())
            .context("module name")?;
        let plain = base.trim_end_matches(".xz").to_string();
        let dst = tree.join("modules").join(&plain);
        if base.ends_with(".xz") {
            let out = Command::new("xz")
                .args(["-dc"])
                .arg(&src)
                .output()
                .context("xz")?;
            ensure!(out.status.success(), "xz -d {}", src.display());
            std::fs::write(&dst, out.stdout)?;
        } else {
            std::fs::copy(&src, &dst)?;
        }
        names.push(plain);
    }
    let root = root();
    let list = root.join("../shared/blocklists/stevenblack.domains.txt");
    // First a real attach, which reports the verifier's result; the suites only if the
    // program loads. Under emulation 20,000 property frames, not 100,000.
    let mut script = format!(
        "cd {root}\n\
         RUST_LOG=debug {bin} attach lo --mode generic --clients any --blocklist {list} \
         > /tmp/attach 2>&1 &\n\
         pid=$!; i=0\n\
         while [ $i -lt 600 ] && kill -0 $pid 2>/dev/null && ! grep -q 'dnssink: attached' /tmp/attach; \
         do sleep 1; i=$((i+1)); done\n\
         kill $pid 2>/dev/null; wait $pid\n\
         grep -E 'kernel features|program loaded|programs verified|no TCX|refuses the name walk|attached|detached|error' /tmp/attach | sed 's/^.*DEBUG.*bpf[^ ]* //' | cut -c1-3000\n\
         grep -q 'dnssink: attached' /tmp/attach || exit 1\n\
         export DNSSINK_PROP_FRAMES=20000\n\
         rc=0\n",
        root = root.display(),
        bin = bin.display(),
        list = list.display()
    );
    for suite in suites {
        script.push_str(&format!(
            "{} --test-threads=1 > /tmp/out 2>&1 || {{ rc=1; grep -E 'panicked|processed|error' /tmp/out | head -20; }}\n\
             grep -E '^(test result|property run|[0-9]+ frames)' /tmp/out | cut -c1-300\n",
            suite.display()
        ));
    }
    script.push_str("exit $rc\n");
    std::fs::write(tree.join("cmd"), script)?;
    // amd64: the suites run in the host's root (chroot). arm64: the host's root is x86, so
    // the static aarch64 binaries run from the initramfs's busybox, with the host's files
    // (the workspace, the lists) under the same paths.
    let run_cmd = match arch {
        Arch::Amd64 => "\
for d in proc sys dev; do mount --bind /$d /mnt/$d; done
mount -t tmpfs tmp /mnt/tmp
mount -t tmpfs run /mnt/run
mount -t bpf bpf /mnt/sys/fs/bpf
# No kernel BTF, as on stock OpenWrt: dnssink must never need /sys/kernel/btf/vmlinux.
mount -t tmpfs nobtf /mnt/sys/kernel/btf
[ -e /mnt/sys/kernel/btf/vmlinux ] && echo \"DNSSINK-BTF present\" || echo \"DNSSINK-BTF hidden\"
echo \"DNSSINK-KERNEL $(uname -r)\"
chroot /mnt /bin/bash /proc/1/root/cmd"
            .to_string(),
        Arch::Arm64 => "\
ln -s /mnt/work /work
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
mount -t bpf bpf /sys/fs/bpf
mount -t tmpfs nobtf /sys/kernel/btf
[ -e /sys/kernel/btf/vmlinux ] && echo \"DNSSINK-BTF present\" || echo \"DNSSINK-BTF hidden\"
echo \"DNSSINK-KERNEL $(uname -r)\"
/bin/sh /cmd"
            .to_string(),
    };
    let init = format!(
        r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in {modules}; do insmod /modules/$m || echo "insmod $m failed"; done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000 host /mnt
{run_cmd}
echo "DNSSINK-RESULT $?"
poweroff -f
"#,
        modules = names.join(" ")
    );
    std::fs::write(tree.join("init"), init)?;
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(tree.join("init"), std::fs::Permissions::from_mode(0o755))?;
    let initrd = dir.join(format!("initrd-{}.gz", k.release));
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cd '{}' && find . | cpio -o -H newc --quiet | gzip -1 > '{}'",
            tree.display(),
            initrd.display()
        ))
        .status()?;
    ensure!(status.success(), "making the initramfs");
    Ok(initrd)
}

/// Appends `name` (a module) and what it depends on to `order`, dependencies first.
fn add_module(deps: &str, name: &str, order: &mut Vec<String>) {
    let Some(line) = deps.lines().find(|l| {
        l.split(':')
            .next()
            .and_then(|p| p.rsplit('/').next())
            .is_some_and(|f| f.split('.').next() == Some(name))
    }) else {
        return; // built in
    };
    let (module, rest) = line.split_once(':').unwrap_or((line, ""));
    for dep in rest.split_whitespace() {
        let dep_name = dep
            .rsplit('/')
            .next()
            .and_then(|f| f.split('.').next())
            .unwrap_or("");
        add_module(deps, dep_name, order);
    }
    if !order.iter().any(|m| m == module) {
        order.push(module.to_string());
    }
}

/// Boots `k` with `initrd` and returns what it wrote on its serial console, which is also
/// written to `log` as it comes.
///
/// Software emulation (TCG) by default: on the nested VMs seen here KVM guests hang before
/// their first line. `DNSSINK_QEMU_ACCEL=kvm` asks for KVM.
fn boot(k: &Kernel, arch: Arch, initrd: &Path, log: &Path) -> Result<String> {
    let accel = std::env::var("DNSSINK_QEMU_ACCEL").unwrap_or_else(|_| "tcg".into());
    let mut cmd = Command::new("timeout");
    cmd.arg("3600");
    let console = match arch {
        Arch::Amd64 => {
            cmd.arg("qemu-system-x86_64");
            if accel == "kvm" {
                cmd.args(["-enable-kvm", "-cpu", "host,arch-capabilities=off"]);
            } else {
                cmd.args(["-accel", "tcg,thread=multi", "-cpu", "max"]);
            }
            "ttyS0"
        }
        Arch::Arm64 => {
            cmd.args(["qemu-system-aarch64", "-M", "virt", "-cpu", "max"]);
            cmd.args(["-accel", "tcg,thread=multi"]);
            "ttyAMA0"
        }
    };
    let file = std::fs::File::create(log)?;
    let status = cmd
        .args(["-m", "2048", "-smp", "2"])
        .args([
            "-nographic",
            "-no-reboot",
            "-nodefaults",
            "-serial",
            "stdio",
        ])
        .arg("-kernel")
        .arg(&k.vmlinuz)
        .arg("-initrd")
        .arg(initrd)
        .args([
            "-append",
            &format!("console={console} panic=-1 quiet loglevel=3"),
            "-virtfs",
            "local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap",
        ])
        .stdout(file.try_clone()?)
        .stderr(file)
        .status()
        .context("running qemu")?;
    let text = std::fs::read_to_string(log)?;
    if !text.contains("DNSSINK-KERNEL") {
        bail!(
            "{} did not reach the tests ({status}); its console is in {}",
            k.release,
            log.display()
        );
    }
    Ok(text)
}
