//! A real moto S3 server for tests (`tests/peers/s3.sh`), plus a direct SDK client to create
//! buckets and inspect what a store left behind.
//!
//! Include with `#[path = "common/s3.rs"] mod s3_peer;`.

#![allow(dead_code)] // Each test binary uses a different part of these helpers.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::Once;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use tempfile::TempDir;

/// The access key every test process signs with (moto accepts any).
pub const ACCESS_KEY: &str = "stackci-test-access-key";
/// The secret key every test process signs with; tests assert it never shows up in messages.
pub const SECRET_KEY: &str = "sEcReT-stackci-9b1f7c2e-never-print-me";

/// Points the AWS credential chain of this process at the test keys, once, before any client
/// exists: credentials and region from the environment, no profiles, no instance metadata,
/// no endpoint (each test passes its server's endpoint in `S3Options`).
pub fn init_env() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: every test calls this before it creates a client or reads the environment,
        // and `Once` blocks the other test threads until it is done, so no thread reads the
        // environment while it changes.
        unsafe {
            std::env::set_var("AWS_ACCESS_KEY_ID", ACCESS_KEY);
            std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
            std::env::set_var("AWS_REGION", "us-east-1");
            std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
            std::env::set_var("AWS_CONFIG_FILE", "/nonexistent/stackci-test-aws-config");
            std::env::set_var(
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/stackci-test-aws-credentials",
            );
            for var in [
                "AWS_ENDPOINT_URL",
                "AWS_ENDPOINT_URL_S3",
                "AWS_PROFILE",
                "AWS_SESSION_TOKEN",
            ] {
                std::env::remove_var(var);
            }
        }
    });
}

/// A moto S3 server started for one test and stopped when dropped.
pub struct Moto {
    dir: TempDir,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The env the peer script printed.
    pub env: HashMap<String, String>,
}

/// The AWS environment of every S3 client the tests start: the test credentials, and
/// nothing from the user's own AWS configuration.
pub const CLIENT_ENV: [(&str, &str); 6] = [
    ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
    ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
    ("AWS_REGION", "us-east-1"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
    ("AWS_CONFIG_FILE", "/nonexistent"),
    ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"),
];

impl Moto {
    /// `stackci` with [`CLIENT_ENV`] and this server as its S3 endpoint.
    pub fn stackci(&self) -> Command {
        let mut cmd = super::stackci();
        cmd.envs(CLIENT_ENV)
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ENDPOINT_URL")
            .args(["--s3-endpoint", &self.endpoint]);
        cmd
    }

    /// Starts moto on a free port; panics with the script's output when it cannot.
    pub fn start() -> Moto {
        Moto::start_with_env(&[])
    }

    /// Starts moto with extra environment variables (moto settings).
    pub fn start_with_env(vars: &[(&str, &str)]) -> Moto {
        init_env();
        let dir = tempfile::tempdir().expect("temp dir for the S3 peer");
        let out = Command::new(script())
            .args(["start", "--port", "0", "--dir"])
            .arg(dir.path())
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .envs(vars.iter().copied())
            .output()
            .expect("running tests/peers/s3.sh");
        assert!(
            out.status.success(),
            "the moto S3 peer did not start:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let env: HashMap<String, String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let endpoint = env
            .get("AWS_ENDPOINT_URL")
            .expect("the S3 peer printed AWS_ENDPOINT_URL")
            .clone();
        Moto { dir, endpoint, env }
    }

    /// A direct SDK client for this server (path-style, test keys).
    pub fn admin(&self) -> Admin {
        let config = aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test"))
            .force_path_style(true)
            .build();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("test runtime");
        Admin {
            client: Client::from_conf(config),
            runtime,
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .args(["stop", "--dir"])
            .arg(self.dir.path())
            .output();
    }
}

fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/s3.sh")
}

/// Direct S3 calls for setting up and checking tests.
pub struct Admin {
    /// The SDK client.
    pub client: Client,
    runtime: tokio::runtime::Runtime,
}

impl Admin {
    /// Runs an SDK future to completion.
    pub fn run<F: std::future::Future>(&self, fut: F) -> F::Output {
        self.runtime.block_on(fut)
    }

    /// Creates a bucket.
    pub fn create_bucket(&self, bucket: &str) {
        self.run(self.client.create_bucket().bucket(bucket).send())
            .unwrap_or_else(|e| panic!("creating bucket {bucket}: {e:?}"));
    }

    /// The object's ETag, or `None` when it does not exist.
    pub fn etag(&self, bucket: &str, key: &str) -> Option<String> {
        match self.run(self.client.head_object().bucket(bucket).key(key).send()) {
            Ok(out) => Some(out.e_tag().expect("ETag").to_owned()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => None,
            Err(e) => panic!("HEAD {bucket}/{key}: {e:?}"),
        }
    }

    /// Every key in the bucket.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let out = self
            .run(self.client.list_objects_v2().bucket(bucket).send())
            .expect("listing the bucket");
        out.contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect()
    }

    /// Keys of unfinished multipart uploads in the bucket.
    pub fn uploads(&self, bucket: &str) -> Vec<String> {
        let out = self
            .run(self.client.list_multipart_uploads().bucket(bucket).send())
            .expect("listing multipart uploads");
        out.uploads()
            .iter()
            .filter_map(|u| u.key().map(str::to_owned))
            .collect()
    }
}
