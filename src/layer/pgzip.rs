//! Deterministic parallel gzip (pigz's method), hashing both sides in the same pass.
//!
//! The uncompressed stream is cut into fixed-size chunks by byte offset, so the output does
//! not depend on the thread count or on scheduling. Each chunk is compressed on its own as
//! raw deflate, primed with the last 32 KiB of the previous chunk as dictionary, and ends
//! with a sync flush (byte-aligned, not final); the last chunk ends with a final block. The
//! chunks therefore concatenate into one valid deflate stream inside one gzip member. A
//! chunk whose byte histogram is flat (already-compressed data, see `looks_random`) or
//! whose deflate output would not be smaller than the chunk itself is written as stored
//! blocks instead. The gzip CRC-32 is combined from per-chunk CRCs. Every decision depends
//! only on the chunk's bytes: each chunk gets a fresh compressor and the same output room.
//!
//! Memory is bounded: a fixed pool of buffers circulates between the producer (the caller
//! of [`ParallelGz::write`]), the compressing workers and the writer thread, so at most
//! `2 * threads + 2` chunks are in flight whatever the relative speeds.
//!
//! The compressed bytes depend on the deflate implementation (zlib-rs, pinned in
//! `Cargo.lock`; its output does not depend on the CPU's SIMD features), the level and
//! [`CHUNK_SIZE`]. Changing any of them changes layer digests, never the uncompressed tar.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use anyhow::{Context, Result, anyhow, bail};
use flate2::{Compress, Compression, FlushCompress, Status};

use super::Layer;
use crate::digest::{Digest, Hasher};

/// Bytes of uncompressed input per independently compressed chunk.
pub const CHUNK_SIZE: usize = 1 << 20;

/// Deflate's window: the dictionary handed from one chunk to the next.
const DICT_SIZE: usize = 32 * 1024;

/// Largest payload of one stored deflate block.
const STORED_BLOCK_MAX: usize = 65_535;

/// gzip member header: magic, deflate, no flags (no name, no comment), mtime 0, no extra
/// flags, OS 255 ("unknown", as Go's `compress/gzip` writes), so it says nothing about the
/// machine that packed it.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// Reusable buffers travelling with one chunk.
#[derive(Default)]
struct Buffers {
    input: Vec<u8>,
    dict: Vec<u8>,
    /// Compressed bytes are `output[..output_len]`; the rest is scratch room.
    output: Vec<u8>,
    output_len: usize,
}

struct Job {
    seq: u64,
    last: bool,
    bufs: Buffers,
}

struct Done {
    seq: u64,
    last: bool,
    crc: crc32fast::Hasher,
    bufs: Buffers,
}

/// A `Write` sink that gzips into a file with `threads` compressing workers.
///
/// Call [`ParallelGz::finish`] to complete the stream; dropping it without finishing stops
/// the threads and leaves the file incomplete (the caller discards it).
pub struct ParallelGz {
    current: Buffers,
    seq: u64,
    tar_hash: Hasher,
    jobs: Option<SyncSender<Job>>,
    pool: Receiver<Buffers>,
    workers: Vec<JoinHandle<()>>,
    writer: Option<JoinHandle<Result<(Digest, u64)>>>,
    what: PathBuf,
}

impl ParallelGz {
    /// Starts the workers and the writer thread. `what` names the output in errors.
    pub fn new(out: File, what: PathBuf, threads: usize, level: u32) -> Result<Self> {
        if level > 9 {
            bail!("gzip level {level} is out of range 0..=9");
        }
        let threads = threads.max(1);
        let in_flight = 2 * threads + 2;
        let (pool_tx, pool) = sync_channel::<Buffers>(in_flight);
        for _ in 0..in_flight {
            pool_tx.send(Buffers::default()).expect("pool receiver is alive");
        }
        let (jobs, job_rx) = sync_channel::<Job>(threads);
        let job_rx = Arc::new(Mutex::new(job_rx));
        let (done_tx, done_rx) = channel::<Done>();
        let mut workers = Vec::with_capacity(threads);
        for i in 0..threads {
            let job_rx = Arc::clone(&job_rx);
            let done_tx = done_tx.clone();
            let handle = std::thread::Builder::new()
                .name(format!("pgzip-{i}"))
                .spawn(move || worker(&job_rx, &done_tx, level))
                .context("starting a compression thread")?;
            workers.push(handle);
        }
        drop(done_tx);
        let writer_what = what.clone();
        let writer = std::thread::Builder::new()
            .name("pgzip-writer".into())
            .spawn(move || write_chunks(out, &done_rx, &pool_tx, &writer_what))
            .context("starting the gzip writer thread")?;
        let current = pool.recv().expect("pool was just filled");
        Ok(ParallelGz {
            current,
            seq: 0,
            tar_hash: Hasher::default(),
            jobs: Some(jobs),
            pool,
            workers,
            writer: Some(writer),
            what,
        })
    }

    /// Hands the current chunk to the workers and takes the next buffers from the pool.
    fn ship(&mut self, last: bool) -> io::Result<()> {
        let next = if last {
            None
        } else {
            let mut next = match self.pool.recv() {
                Ok(b) => b,
                Err(_) => return Err(self.pipeline_broken()),
            };
            let tail = self.current.input.len().saturating_sub(DICT_SIZE);
            next.dict.clear();
            next.dict.extend_from_slice(&self.current.input[tail..]);
            next.input.clear();
            Some(next)
        };
        self.tar_hash.update(&self.current.input);
        let bufs = match next {
            Some(next) => std::mem::replace(&mut self.current, next),
            None => std::mem::take(&mut self.current),
        };
        let job = Job {
            seq: self.seq,
            last,
            bufs,
        };
        self.seq += 1;
        let sent = self.jobs.as_ref().map(|j| j.send(job).is_ok()).unwrap_or(false);
        if !sent {
            return Err(self.pipeline_broken());
        }
        Ok(())
    }

    fn pipeline_broken(&mut self) -> io::Error {
        // A worker or the writer stopped: the writer's error says why.
        let cause = self
            .stop()
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_else(|| "a compression thread stopped".into());
        io::Error::other(format!("writing {}: {cause}", self.what.display()))
    }

    /// Closes the job queue and joins every thread; returns the writer's result.
    fn stop(&mut self) -> Result<(Digest, u64)> {
        self.jobs = None;
        for w in self.workers.drain(..) {
            if w.join().is_err() {
                return Err(anyhow!("a compression thread panicked"));
            }
        }
        match self.writer.take() {
            Some(w) => w.join().map_err(|_| anyhow!("the gzip writer thread panicked"))?,
            None => Err(anyhow!("the gzip stream was already stopped")),
        }
    }

    /// Compresses what is buffered, writes the gzip trailer, and returns the layer written:
    /// the gzip output's digest and size, the uncompressed input's digest as `diff_id`.
    /// The output file is flushed but not synced.
    pub fn finish(mut self) -> Result<Layer> {
        self.ship(true)?;
        let uncompressed = std::mem::take(&mut self.tar_hash);
        let (digest, size) = self.stop()?;
        let (diff_id, _) = uncompressed.finish();
        Ok(Layer::new(digest, size, diff_id))
    }
}

impl Write for ParallelGz {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let n = data.len();
        while !data.is_empty() {
            if self.current.input.len() == CHUNK_SIZE {
                self.ship(false)?;
            }
            if self.current.input.capacity() < CHUNK_SIZE {
                self.current.input.reserve_exact(CHUNK_SIZE - self.current.input.len());
            }
            let take = data.len().min(CHUNK_SIZE - self.current.input.len());
            self.current.input.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for ParallelGz {
    fn drop(&mut self) {
        if self.writer.is_some() {
            // Unfinished stream (an error upstream): stop the threads; the output is discarded.
            let _ = self.stop();
        }
    }
}

fn worker(jobs: &Mutex<Receiver<Job>>, done: &std::sync::mpsc::Sender<Done>, level: u32) {
    loop {
        let job = {
            let Ok(rx) = jobs.lock() else { return };
            match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        let Job { seq, last, mut bufs } = job;
        let mut crc = crc32fast::Hasher::new();
        crc.update(&bufs.input);
        compress_chunk(level, &mut bufs, last);
        if done.send(Done { seq, last, crc, bufs }).is_err() {
            return;
        }
    }
}

/// Deflates `bufs.input` into `bufs.output[..bufs.output_len]` (raw deflate, byte-aligned
/// end) with a fresh compressor, falling back to stored blocks when that is not smaller.
///
/// Two zlib-rs behaviours make this careful. Its block decisions (and a pending-buffer
/// assertion) depend on how much output room a call has, and `reset()` does not clear all
/// of its state after a call that ran out of room. So every chunk gets a new compressor and
/// one call with room well above deflate's worst case ([`deflate_room`]): output never
/// depends on buffer capacities, compressor history or scheduling.
fn compress_chunk(level: u32, bufs: &mut Buffers, last: bool) {
    let input = &bufs.input;
    let room = deflate_room(input.len());
    let out = &mut bufs.output;
    if out.len() < room {
        out.resize(room, 0);
    }
    let mut deflate = Compress::new(Compression::new(level), false);
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let primed = bufs.dict.is_empty() || deflate.set_dictionary(&bufs.dict).is_ok();
    let done = primed
        && level > 0
        && !looks_random(input)
        && match deflate.compress(input, &mut out[..room], flush) {
            // Finish is complete at stream end; a sync flush when all input is consumed
            // and room is left (zlib's contract: nothing is pending then).
            Ok(status) => {
                deflate.total_in() == input.len() as u64
                    && if last {
                        status == Status::StreamEnd
                    } else {
                        (deflate.total_out() as usize) < room
                    }
            }
            Err(_) => false,
        };
    let len = deflate.total_out() as usize;
    if done && len < stored_len(input.len()) {
        bufs.output_len = len;
    } else {
        out.clear();
        write_stored(input, out, last);
        bufs.output_len = out.len();
    }
}

/// Whether `data`'s byte histogram is so flat that deflate cannot gain anything worth its
/// time (already-compressed files): deflating such data is the slowest case, so it is
/// stored without trying.
///
/// The test is a chi-square statistic against uniform bytes in exact integer arithmetic (no
/// floating point, so every machine decides alike): chi² = 256·Σc²/N − N < N/36. Order-0
/// coding gains about chi²/(2·N·ln 2) bits per byte, so this is "less than 0.02 bits per
/// byte" (0.25 %); random data scores about 255, text and code far above N/36. Small
/// inputs (N/36 below random noise) are never called random.
fn looks_random(data: &[u8]) -> bool {
    let n = data.len() as u128;
    if n < 64 * 1024 {
        return false;
    }
    // Four interleaved tables so consecutive equal bytes do not serialize on one counter.
    let mut counts = [[0u32; 256]; 4];
    let mut quads = data.chunks_exact(4);
    for q in &mut quads {
        counts[0][q[0] as usize] += 1;
        counts[1][q[1] as usize] += 1;
        counts[2][q[2] as usize] += 1;
        counts[3][q[3] as usize] += 1;
    }
    for &b in quads.remainder() {
        counts[0][b as usize] += 1;
    }
    let sum_sq: u128 = (0..256)
        .map(|i| {
            let c = counts.iter().map(|t| t[i] as u128).sum::<u128>();
            c * c
        })
        .sum();
    36 * 256 * sum_sq < 37 * n * n
}

/// Output room for deflating `input_len` bytes: zlib-ng's `deflateBound` is the input plus
/// 1/8 (static codes can take 9 bits a byte) plus a few bytes; this doubles the margin.
fn deflate_room(input_len: usize) -> usize {
    input_len + input_len / 4 + 64 * 1024
}

/// Bytes that `input_len` bytes take as stored deflate blocks.
fn stored_len(input_len: usize) -> usize {
    let blocks = input_len.div_ceil(STORED_BLOCK_MAX).max(1);
    input_len + 5 * blocks
}

/// Writes `input` as stored deflate blocks starting at a byte boundary; the last one has
/// BFINAL set when `last`.
fn write_stored(input: &[u8], out: &mut Vec<u8>, last: bool) {
    out.reserve(stored_len(input.len()));
    let mut blocks = input.chunks(STORED_BLOCK_MAX).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[u8::from(last), 0, 0, 0xff, 0xff]);
        return;
    }
    while let Some(block) = blocks.next() {
        let final_bit = last && blocks.peek().is_none();
        let len = block.len() as u16;
        out.push(u8::from(final_bit));
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
}

/// The writer thread: puts chunks back in order, writes and hashes them, returns the
/// buffers to the pool, and ends the member with CRC-32 and ISIZE.
fn write_chunks(
    mut out: File,
    done: &Receiver<Done>,
    pool: &SyncSender<Buffers>,
    what: &std::path::Path,
) -> Result<(Digest, u64)> {
    let mut hash = Hasher::default();
    let mut emit = |bytes: &[u8], hash: &mut Hasher| -> Result<()> {
        out.write_all(bytes)
            .with_context(|| format!("writing {}", what.display()))?;
        hash.update(bytes);
        Ok(())
    };
    emit(&GZIP_HEADER, &mut hash)?;
    let mut crc = crc32fast::Hasher::new();
    let mut pending = BTreeMap::new();
    let mut next = 0u64;
    let mut isize = 0u32;
    loop {
        let Ok(d) = done.recv() else {
            bail!("the gzip stream for {} ended before its last chunk", what.display());
        };
        pending.insert(d.seq, d);
        while let Some(d) = pending.remove(&next) {
            emit(&d.bufs.output[..d.bufs.output_len], &mut hash)?;
            crc.combine(&d.crc);
            // ISIZE is the input length modulo 2^32.
            isize = isize.wrapping_add(d.bufs.input.len() as u32);
            next += 1;
            if d.last {
                let mut trailer = [0u8; 8];
                trailer[..4].copy_from_slice(&crc.clone().finalize().to_le_bytes());
                trailer[4..].copy_from_slice(&isize.to_le_bytes());
                emit(&trailer, &mut hash)?;
                out.flush().with_context(|| format!("writing {}", what.display()))?;
                return Ok(hash.finish());
            }
            // The producer may already be gone (it errored); the buffers are then dropped.
            let _ = pool.send(d.bufs);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::layer::pack::DEFAULT_LEVEL;

    fn gzip(data: &[u8], threads: usize, level: u32) -> (Vec<u8>, Layer) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.gz");
        let file = File::create(&path).unwrap();
        let mut gz = ParallelGz::new(file, path.clone(), threads, level).unwrap();
        // Uneven writes, to cross chunk boundaries mid-write.
        for piece in data.chunks(77_777) {
            gz.write_all(piece).unwrap();
        }
        let summary = gz.finish().unwrap();
        (std::fs::read(&path).unwrap(), summary)
    }

    fn sample(len: usize) -> Vec<u8> {
        // Half text-like, half pseudo-random (xorshift), interleaved by 100 KB.
        let mut x = 0x9e3779b97f4a7c15u64;
        (0..len)
            .map(|i| {
                if (i / 100_000) % 2 == 0 {
                    b"the quick brown fox jumps over the lazy dog; "[i % 45]
                } else {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                }
            })
            .collect()
    }

    #[test]
    fn roundtrips_and_is_independent_of_threads() {
        let data = sample(3 * CHUNK_SIZE + 12_345);
        let (one, s1) = gzip(&data, 1, 2);
        let (four, s4) = gzip(&data, 4, 2);
        assert_eq!(one, four);
        assert_eq!(s1, s4);
        assert_eq!(s1.diff_id, Digest::of(&data));
        assert_eq!(*s1.digest(), Digest::of(&one));
        assert_eq!(s1.size(), one.len() as u64);
        assert_eq!(&one[..10], &GZIP_HEADER);
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&one[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
        assert!(
            one.len() < data.len() * 6 / 10,
            "compressed {} of {}",
            one.len(),
            data.len()
        );
    }

    /// Layer digests must not change by accident (a zlib-rs upgrade, a changed chunk size or
    /// heuristic): this pins the compressed output for a fixed input.
    #[test]
    fn output_is_pinned() {
        // Mixed chunks, then whole random chunks (stored without trying).
        let mut data = sample(3 * CHUNK_SIZE + 12_345);
        let mut x = 0x2545f4914f6cdd1du64;
        data.extend((0..3 * CHUNK_SIZE / 2).map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        }));
        let (_, summary) = gzip(&data, 2, DEFAULT_LEVEL);
        assert_eq!(
            summary.digest().to_string(),
            "sha256:3bc2cdec7827efe1e98a93be24303162b8a19b4467794426e5b0924233f12730",
            "compressed output changed: layer digests change"
        );
    }

    #[test]
    fn exact_chunk_multiple_empty_input_and_stored_levels() {
        for (len, level) in [(0, 1), (CHUNK_SIZE, 1), (2 * CHUNK_SIZE, 0), (CHUNK_SIZE + 1, 9)] {
            let data = sample(len);
            let (gz, _) = gzip(&data, 2, level);
            let mut back = Vec::new();
            flate2::read::MultiGzDecoder::new(&gz[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data, "len {len} level {level}");
        }
    }

    #[test]
    fn chunks_do_not_depend_on_buffer_sizes() {
        let data = sample(CHUNK_SIZE);
        let other: Vec<u8> = sample(CHUNK_SIZE + 500_000).into_iter().rev().collect();
        for level in [1, 2, 3, 6] {
            for last in [false, true] {
                let dict = other[..DICT_SIZE].to_vec();
                let mut a = Buffers {
                    input: data.clone(),
                    dict: dict.clone(),
                    ..Buffers::default()
                };
                compress_chunk(level, &mut a, last);
                let mut b = Buffers {
                    input: data.clone(),
                    dict,
                    output: vec![0xaa; 3 * CHUNK_SIZE],
                    output_len: 0,
                };
                b.output.reserve(5 * CHUNK_SIZE);
                compress_chunk(level, &mut b, last);
                assert_eq!(
                    a.output[..a.output_len],
                    b.output[..b.output_len],
                    "level {level} last {last}"
                );
                assert!(a.output_len < data.len(), "level {level}: compressed");
            }
        }
    }

    /// `len` bytes that deflate cannot shrink (xorshift64, fixed seed).
    fn xorshift_bytes(len: usize) -> Vec<u8> {
        let mut x = 88172645463325252u64;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect()
    }

    #[test]
    fn random_chunks_are_stored_at_every_level_and_size() {
        let random = xorshift_bytes(CHUNK_SIZE);
        // A whole chunk is caught by `looks_random`; a small one is deflated, found no
        // smaller, and stored.
        for len in [CHUNK_SIZE, 60_000] {
            for level in 0..=9 {
                let mut bufs = Buffers {
                    input: random[..len].to_vec(),
                    ..Buffers::default()
                };
                compress_chunk(level, &mut bufs, false);
                assert_eq!(bufs.output_len, stored_len(len), "len {len} level {level}");
            }
        }
    }

    #[test]
    fn only_flat_histograms_look_random() {
        let random = xorshift_bytes(CHUNK_SIZE);
        assert!(looks_random(&random));
        assert!(!looks_random(&random[..1000]), "too small to tell");
        // Random with every fourth byte zero: deflate gains a lot; not random.
        let mut words = random.clone();
        words.iter_mut().step_by(4).for_each(|b| *b = 0);
        assert!(!looks_random(&words));
        let text = sample(CHUNK_SIZE);
        assert!(!looks_random(&text));
        // Mostly random with 5 % text still gets deflated.
        let mut mixed = random.clone();
        mixed[..CHUNK_SIZE / 20].copy_from_slice(&text[..CHUNK_SIZE / 20]);
        assert!(!looks_random(&mixed));
    }

    #[test]
    fn stored_blocks_are_valid_deflate() {
        let data = sample(200_000);
        for last in [false, true] {
            let mut out = Vec::new();
            write_stored(&data, &mut out, last);
            assert_eq!(out.len(), stored_len(data.len()));
            if !last {
                // A non-final stream needs an end: append an empty final stored block.
                write_stored(&[], &mut out, true);
            }
            let mut back = Vec::new();
            flate2::read::DeflateDecoder::new(&out[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data);
        }
    }
}
