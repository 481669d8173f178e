//! A recipe's output pipe, read without ever blocking for long.
//!
//! The pipe's write end is shared by every process the recipe starts, so end-of-file comes
//! only when the last of them exits, which a background or `setsid` child can put off
//! indefinitely. The supervisor therefore waits on the pipe with a timeout ([`Output::pump`])
//! and, once the recipe's shell has exited, takes only what is already buffered
//! ([`Output::drain`]).

use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// Line-splitting reader over a pipe.
#[derive(Debug)]
pub struct Output<R> {
    reader: R,
    pending: Vec<u8>,
    eof: bool,
}

impl<R: Read + AsRawFd> Output<R> {
    /// Reads from `reader` (the read end of the recipe's stdout/stderr pipe).
    pub fn new(reader: R) -> Self {
        Output {
            reader,
            pending: Vec::new(),
            eof: false,
        }
    }

    /// Waits up to `wait` for output and passes each complete line (without its newline)
    /// to `line`. After end-of-file it just sleeps for `wait`.
    pub fn pump(&mut self, wait: Duration, line: &mut dyn FnMut(&[u8])) -> io::Result<()> {
        if self.eof {
            std::thread::sleep(wait);
            return Ok(());
        }
        if self.ready(wait)? {
            self.read_once(line)?;
        }
        Ok(())
    }

    /// Takes what the pipe already holds, for at most `limit` (a stray process may write
    /// without end), then passes an unterminated last line, if any.
    pub fn drain(&mut self, limit: Duration, line: &mut dyn FnMut(&[u8])) -> io::Result<()> {
        let start = Instant::now();
        while !self.eof && start.elapsed() < limit && self.ready(Duration::ZERO)? {
            self.read_once(line)?;
        }
        if !self.pending.is_empty() {
            line(&std::mem::take(&mut self.pending));
        }
        Ok(())
    }

    /// Whether a read would not block (data or end-of-file), waiting up to `wait`.
    fn ready(&self, wait: Duration) -> io::Result<bool> {
        let mut fd = libc::pollfd {
            fd: self.reader.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = wait.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: `fd` is one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut fd, 1, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(e)
            };
        }
        Ok(n > 0)
    }

    fn read_once(&mut self, line: &mut dyn FnMut(&[u8])) -> io::Result<()> {
        let mut buf = [0u8; 64 * 1024];
        let n = match self.reader.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        };
        if n == 0 {
            self.eof = true;
            return Ok(());
        }
        self.pending.extend_from_slice(&buf[..n]);
        let mut start = 0;
        while let Some(end) = self.pending[start..].iter().position(|&b| b == b'\n') {
            line(&self.pending[start..start + end]);
            start += end + 1;
        }
        self.pending.drain(..start);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn splits_lines_and_does_not_wait_for_a_writer_that_stays_open() {
        let (reader, mut writer) = std::io::pipe().unwrap();
        let mut out = Output::new(reader);
        writer.write_all(b"one\ntwo\nthr").unwrap();
        let mut lines = Vec::new();
        out.pump(Duration::from_secs(5), &mut |l| lines.push(l.to_vec()))
            .unwrap();
        assert_eq!(lines, [b"one".to_vec(), b"two".to_vec()]);
        let start = Instant::now();
        out.pump(Duration::from_millis(50), &mut |l| lines.push(l.to_vec()))
            .unwrap();
        writer.write_all(b"ee").unwrap();
        // `writer` stays open: drain must return with what is there.
        out.drain(Duration::from_secs(5), &mut |l| lines.push(l.to_vec()))
            .unwrap();
        assert!(start.elapsed() < Duration::from_secs(3));
        assert_eq!(lines.last().unwrap(), b"three");
        drop(writer);
        out.pump(Duration::from_secs(1), &mut |_| {}).unwrap();
        assert!(out.eof);
    }
}
