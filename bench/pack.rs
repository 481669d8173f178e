//! Benchmark driver for the layer packer: `pack-bench PREFIX OUT [--threads N] [--level L]
//! [--epoch S]`. Prints the digest, diff_id and size. Built as a Cargo example with its
//! source under `bench/` (not `examples/`, which holds example stacks); see `bench/pack.sh`.

use std::path::PathBuf;
use std::process::ExitCode;

use stackci::layer::pack::{PackOptions, pack_prefix};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pack-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut positional = Vec::new();
    let mut opts = PackOptions::default();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| anyhow::anyhow!("{name} needs a value"));
        match arg.as_str() {
            "--threads" => opts.threads = value("--threads")?.parse()?,
            "--level" => opts.level = value("--level")?.parse()?,
            "--epoch" => opts.source_date_epoch = value("--epoch")?.parse()?,
            _ if arg.starts_with("--") => anyhow::bail!("unknown option {arg}"),
            _ => positional.push(PathBuf::from(arg)),
        }
    }
    let [prefix, out] = <[PathBuf; 2]>::try_from(positional)
        .map_err(|_| anyhow::anyhow!("usage: pack-bench PREFIX OUT [--threads N] [--level L] [--epoch S]"))?;
    let layer = pack_prefix(&prefix, &out, &opts)?;
    println!(
        "digest {}\ndiff_id {}\nsize {}",
        layer.digest(),
        layer.diff_id,
        layer.size()
    );
    Ok(())
}
