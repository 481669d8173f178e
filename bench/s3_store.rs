//! Benchmark driver for `bench/s3-store.sh`: pushes every file of a directory through
//! [`S3Store`] the way the layout mirror pushes blobs (HEAD; when absent, one streamed PUT or
//! a parallel multipart upload), `THREADS` files at a time.
//!
//!     s3_store_push DIR s3://BUCKET/PREFIX [THREADS]
//!
//! Credentials, region and endpoint come from the AWS chain (`AWS_ENDPOINT_URL`). Prints one
//! line: `uploaded N skipped N bytes N seconds S`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use stackci::mirror::FileSource;
use stackci::mirror::s3::{S3Options, S3Store};
use stackci::mirror::store::ObjectStore;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (dir, url, threads) = match args.as_slice() {
        [dir, url] => (dir, url, 8),
        [dir, url, threads] => (dir, url, threads.parse().context("THREADS")?),
        _ => bail!("usage: s3_store_push DIR s3://BUCKET/PREFIX [THREADS]"),
    };
    let store = S3Store::new(url, &S3Options::default())?;
    let files = files_in(Path::new(dir))?;
    let next = AtomicUsize::new(0);
    let uploaded = AtomicUsize::new(0);
    let bytes = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| -> Result<()> {
                    while let Some(file) = files.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let name = file.file_name().context("file name")?.to_string_lossy();
                        let key = format!("blobs/sha256/{name}");
                        if !store.exists(&key)? {
                            store.put(&key, &FileSource::stat(file)?)?;
                            uploaded.fetch_add(1, Ordering::Relaxed);
                            bytes.fetch_add(file.metadata()?.len(), Ordering::Relaxed);
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| w.join().expect("worker panicked"))
    })?;
    let uploaded = uploaded.into_inner();
    println!(
        "uploaded {uploaded} skipped {} bytes {} seconds {:.2}",
        files.len() - uploaded,
        bytes.into_inner(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The regular files directly in `dir`, sorted.
fn files_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}
