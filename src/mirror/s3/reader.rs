//! A blocking [`Read`] over an object's body: a task on the shared runtime pulls chunks
//! ahead into a small bounded channel while the caller consumes them.

use std::io::{self, Read};

use aws_sdk_s3::primitives::ByteStream;
use bytes::{Buf, Bytes};
use tokio::sync::mpsc;

use crate::net::runtime::{self, RuntimeError};

/// Chunks (of the transport's size, typically 8–64 KiB) read ahead of the caller.
const READ_AHEAD: usize = 16;

/// What the pulling task hands the reader.
enum Msg {
    Data(Bytes),
    Failed(io::Error),
    End,
}

/// Where the reader is once its current chunk is used up.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    Ended,
    Failed,
}

/// Streams one object body; see the module docs.
pub(super) struct BodyReader {
    chunks: mpsc::Receiver<Msg>,
    current: Bytes,
    state: State,
}

impl BodyReader {
    /// Starts pulling `body` (of the object at `url`, for messages) on the shared runtime.
    pub fn spawn(mut body: ByteStream, url: String) -> Result<BodyReader, RuntimeError> {
        let (tx, rx) = mpsc::channel(READ_AHEAD);
        runtime::spawn(async move {
            loop {
                let msg = match body.try_next().await {
                    Ok(Some(chunk)) => Msg::Data(chunk),
                    Ok(None) => Msg::End,
                    Err(e) => Msg::Failed(io::Error::other(
                        anyhow::Error::new(e).context(format!("reading {url}")),
                    )),
                };
                let last = !matches!(msg, Msg::Data(_));
                // A send fails only when the reader was dropped: stop pulling.
                if tx.send(msg).await.is_err() || last {
                    return;
                }
            }
        })?;
        Ok(BodyReader {
            chunks: rx,
            current: Bytes::new(),
            state: State::Open,
        })
    }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.state {
                State::Ended => return Ok(0),
                State::Failed => return Err(io::Error::other("the S3 download failed earlier")),
                State::Open if buf.is_empty() => return Ok(0),
                State::Open => {}
            }
            match self.chunks.blocking_recv() {
                Some(Msg::Data(chunk)) => self.current = chunk,
                Some(Msg::End) => self.state = State::Ended,
                Some(Msg::Failed(e)) => {
                    self.state = State::Failed;
                    return Err(e);
                }
                None => {
                    self.state = State::Failed;
                    return Err(io::Error::other("the S3 download stopped unexpectedly"));
                }
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        Ok(n)
    }
}
