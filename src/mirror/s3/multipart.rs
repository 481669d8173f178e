//! Multipart upload of a large file: parts stream from the file by offset, at most `jobs` in
//! flight, so memory stays near `jobs` read buffers whatever the file size. A failed upload is
//! aborted, so it never becomes a visible object and its parts do not linger.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use tokio::task::JoinSet;

use super::error::Target;
use super::{FILE_BUFFER, size_i64};

/// One file to upload in parts.
pub(super) struct Upload<'a> {
    /// The S3 client.
    pub client: &'a Client,
    /// The bucket, for requests and messages.
    pub target: &'a Arc<Target>,
    /// The full bucket key.
    pub key: &'a str,
    /// The file to upload.
    pub file: &'a Path,
    /// The file's size, measured before the upload; a file that shrinks fails the upload.
    pub size: u64,
    /// Bytes per part (the last part may be smaller).
    pub part_size: u64,
    /// Parts in flight at once.
    pub jobs: usize,
}

/// What every part task needs, shared between them.
struct Shared {
    client: Client,
    target: Arc<Target>,
    key: String,
    upload_id: String,
    file: std::path::PathBuf,
}

impl Upload<'_> {
    /// Creates the upload, sends the parts, completes it; aborts it on any failure.
    pub async fn run(self) -> Result<()> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.target.bucket)
            .key(self.key)
            .send()
            .await
            .map_err(|e| self.target.describe(e, "starting a multipart upload to", self.key))?;
        let upload_id = created
            .upload_id()
            .with_context(|| format!("S3 gave no upload id for {}", self.target.url(self.key)))?
            .to_owned();
        let shared = Arc::new(Shared {
            client: self.client.clone(),
            target: Arc::clone(self.target),
            key: self.key.to_owned(),
            upload_id,
            file: self.file.to_owned(),
        });
        let result = match self.send_parts(&shared).await {
            Ok(parts) => self.complete(&shared, parts).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => Ok(()),
            Err(e) => Err(abort(&shared, e).await),
        }
    }

    /// Uploads every part, at most `jobs` at once; returns them in part order.
    async fn send_parts(&self, shared: &Arc<Shared>) -> Result<Vec<CompletedPart>> {
        let count = self.size.div_ceil(self.part_size);
        let mut tasks = JoinSet::new();
        let mut parts = Vec::new();
        let mut next = 0;
        loop {
            while tasks.len() < self.jobs && next < count {
                let offset = next * self.part_size;
                let len = self.part_size.min(self.size - offset);
                let number = i32::try_from(next + 1).context("too many parts")?;
                tasks.spawn(send_part(Arc::clone(shared), number, offset, len));
                next += 1;
            }
            let Some(joined) = tasks.join_next().await else {
                break;
            };
            let part = match joined {
                Ok(Ok(part)) => part,
                Ok(Err(e)) => {
                    tasks.shutdown().await;
                    return Err(e);
                }
                Err(e) => {
                    tasks.shutdown().await;
                    return Err(anyhow::Error::new(e).context("an upload task failed"));
                }
            };
            parts.push(part);
        }
        parts.sort_by_key(|p| p.part_number());
        Ok(parts)
    }

    /// Makes the uploaded parts the object.
    async fn complete(&self, shared: &Shared, parts: Vec<CompletedPart>) -> Result<()> {
        self.client
            .complete_multipart_upload()
            .bucket(&self.target.bucket)
            .key(self.key)
            .upload_id(&shared.upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await
            .map_err(|e| self.target.describe(e, "completing the multipart upload to", self.key))?;
        Ok(())
    }
}

/// Uploads bytes `offset..offset + len` of the file as part `number`, streamed from disk.
async fn send_part(shared: Arc<Shared>, number: i32, offset: u64, len: u64) -> Result<CompletedPart> {
    let body = ByteStream::read_from()
        .path(&shared.file)
        .buffer_size(FILE_BUFFER)
        .offset(offset)
        .length(Length::Exact(len))
        .build()
        .await
        .with_context(|| {
            format!(
                "reading bytes {offset}..{} of {} for part {number}",
                offset + len,
                shared.file.display()
            )
        })?;
    let sent = shared
        .client
        .upload_part()
        .bucket(&shared.target.bucket)
        .key(&shared.key)
        .upload_id(&shared.upload_id)
        .part_number(number)
        .content_length(size_i64(len)?)
        .body(body)
        .send()
        .await
        .map_err(|e| {
            let doing = format!("uploading part {number} of");
            shared.target.describe(e, &doing, &shared.key)
        })?;
    let etag = sent.e_tag().with_context(|| {
        format!(
            "S3 gave no ETag for part {number} of {}",
            shared.target.url(&shared.key)
        )
    })?;
    Ok(CompletedPart::builder().part_number(number).e_tag(etag).build())
}

/// Aborts the upload after `err`, so its parts are dropped; returns `err`, noting a failed abort.
async fn abort(shared: &Shared, err: anyhow::Error) -> anyhow::Error {
    let aborted = shared
        .client
        .abort_multipart_upload()
        .bucket(&shared.target.bucket)
        .key(&shared.key)
        .upload_id(&shared.upload_id)
        .send()
        .await;
    match aborted {
        Ok(_) => err,
        Err(e) => {
            let abort_err = shared
                .target
                .describe(e, "aborting the multipart upload to", &shared.key);
            err.context(format!(
                "the unfinished upload {} could not be aborted ({abort_err:#}); its parts stay \
                 billed until an AbortIncompleteMultipartUpload lifecycle rule removes them",
                shared.upload_id
            ))
        }
    }
}
