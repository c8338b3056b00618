//! `dnssink-dist OUTDIR`: the man pages and shell completions of `dnssink`, from its clap
//! definition. `cargo xtask dist` runs it.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::CommandFactory as _;
use clap_complete::Shell;
use dnssink::cli::Cli;

fn main() -> Result<()> {
    let out: PathBuf = std::env::args_os()
        .nth(1)
        .context("usage: dnssink-dist OUTDIR")?
        .into();
    let man = out.join("man");
    let completions = out.join("completions");
    for d in [&man, &completions] {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let cmd = Cli::command();
    clap_mangen::generate_to(cmd.clone(), &man).context("writing the man pages")?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut cmd.clone(), "dnssink", &completions)
            .with_context(|| format!("writing the {shell} completions"))?;
    }
    println!("{}", out.display());
    Ok(())
}
