//! The S3 object store against a real moto S3 server (`tests/peers/s3.sh`): round trips,
//! multipart uploads (parallel, streamed, aborted on failure), conditional writes under a
//! 16-thread race, user-facing errors without secrets, and peak memory of a 200 MiB upload.

use crate::common::s3 as s3_peer;

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};
use stackci::mirror::FileSource;
use stackci::mirror::s3::{S3Options, S3Store};
use stackci::mirror::store::{Listed, ObjectStore, Precondition, Version};

use s3_peer::{Moto, SECRET_KEY};

const MIB: u64 = 1024 * 1024;

/// Options pointing at `moto` (path-style follows from the endpoint).
fn options(moto: &Moto) -> S3Options {
    S3Options {
        endpoint: Some(moto.endpoint.clone()),
        ..S3Options::default()
    }
}

/// Writes `size` bytes of reproducible pseudo-random data to `path`, in chunks; returns
/// their sha256.
fn write_random(path: &Path, size: u64, seed: u64) -> [u8; 32] {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut hasher = Sha256::new();
    let mut state = seed | 1;
    let mut chunk = vec![0u8; 1 << 16];
    let mut left = size;
    while left > 0 {
        for word in chunk.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let n = left.min(chunk.len() as u64) as usize;
        file.write_all(&chunk[..n]).unwrap();
        hasher.update(&chunk[..n]);
        left -= n as u64;
    }
    file.flush().unwrap();
    hasher.finalize().into()
}

/// The sha256 and length of everything `reader` yields, read in small pieces.
fn hash_stream(mut reader: impl Read) -> ([u8; 32], u64) {
    let mut hasher = Sha256::new();
    let mut buf = [0u8; 8192];
    let mut total = 0;
    loop {
        let n = reader.read(&mut buf).unwrap();
        if n == 0 {
            return (hasher.finalize().into(), total);
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
}

fn keys_of(listed: Vec<Listed>) -> Vec<String> {
    listed.into_iter().map(|o| o.key).collect()
}

fn read_all(store: &S3Store, key: &str) -> Vec<u8> {
    let mut out = Vec::new();
    store
        .open(key)
        .unwrap()
        .expect("object exists")
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn objects_round_trip_under_the_prefix() {
    let moto = Moto::start();
    let admin = moto.admin();
    admin.create_bucket("mirror");
    let store = S3Store::new("s3://mirror/ci/cache/", &options(&moto)).unwrap();
    assert_eq!(
        store.location(),
        format!("s3://mirror/ci/cache (endpoint {})", moto.endpoint)
    );

    assert!(!store.exists("oci-layout").unwrap());
    assert!(store.open("oci-layout").unwrap().is_none());
    assert!(store.read_versioned("index.json").unwrap().is_none());

    store
        .put_bytes("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
        .unwrap();
    assert!(store.exists("oci-layout").unwrap());
    assert_eq!(read_all(&store, "oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#);

    let tmp = tempfile::tempdir().unwrap();
    let small = tmp.path().join("small");
    std::fs::write(&small, b"layer bytes").unwrap();
    store
        .put("blobs/sha256/aaaa", &FileSource::stat(&small).unwrap())
        .unwrap();
    let empty = tmp.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    store
        .put("blobs/sha256/bbbb", &FileSource::stat(&empty).unwrap())
        .unwrap();
    assert_eq!(read_all(&store, "blobs/sha256/aaaa"), b"layer bytes");
    assert_eq!(read_all(&store, "blobs/sha256/bbbb"), b"");

    store.put_bytes("index.json", b"{}").unwrap();
    let (bytes, version) = store.read_versioned("index.json").unwrap().unwrap();
    assert_eq!(bytes, b"{}");
    assert_eq!(
        Some(version.0),
        admin.etag("mirror", "ci/cache/index.json"),
        "the version is the object's ETag"
    );

    let mut blobs = keys_of(store.list("blobs/").unwrap());
    blobs.sort();
    assert_eq!(blobs, ["blobs/sha256/aaaa", "blobs/sha256/bbbb"]);
    let mut keys = admin.keys("mirror");
    keys.sort();
    assert_eq!(
        keys,
        [
            "ci/cache/blobs/sha256/aaaa",
            "ci/cache/blobs/sha256/bbbb",
            "ci/cache/index.json",
            "ci/cache/oci-layout"
        ],
        "the layout sits under the URL's prefix"
    );

    // A store at the bucket root sees the same objects under their full keys.
    let root = S3Store::new("s3://mirror", &options(&moto)).unwrap();
    assert_eq!(keys_of(root.list("ci/cache/oci").unwrap()), ["ci/cache/oci-layout"]);
}

#[test]
fn listing_pages_past_a_thousand_keys() {
    let moto = Moto::start();
    moto.admin().create_bucket("many");
    let store = Arc::new(S3Store::new("s3://many/p", &options(&moto)).unwrap());
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let store = Arc::clone(&store);
            thread::spawn(move || {
                for i in (t..1100).step_by(4) {
                    store.put_bytes(&format!("blobs/{i:05}"), b"x").unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let mut keys = keys_of(store.list("blobs/").unwrap());
    keys.sort();
    assert_eq!(keys.len(), 1100);
    assert_eq!(keys[1099], "blobs/01099");
}

#[test]
fn large_files_go_up_in_parallel_parts_and_read_back_identical() {
    let moto = Moto::start();
    let admin = moto.admin();
    admin.create_bucket("big");
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("blob");
    let sum = write_random(&file, 40 * MIB, 7);
    // Default options: 16 MiB parts, 4 in flight.
    let store = S3Store::new("s3://big/m", &options(&moto)).unwrap();
    store
        .put("blobs/sha256/big", &FileSource::stat(&file).unwrap())
        .unwrap();

    let etag = admin.etag("big", "m/blobs/sha256/big").unwrap();
    assert!(
        etag.ends_with("-3\""),
        "40 MiB in 16 MiB parts is a 3-part upload, ETag {etag}"
    );
    assert!(admin.uploads("big").is_empty());
    let (read_sum, len) = hash_stream(store.open("blobs/sha256/big").unwrap().unwrap());
    assert_eq!(len, 40 * MIB);
    assert_eq!(read_sum, sum, "the object reads back byte for byte");

    // A file of exactly one part size goes up in one PUT; one byte more is multipart.
    let exact = tmp.path().join("exact");
    write_random(&exact, 5 * MIB, 3);
    let over = tmp.path().join("over");
    write_random(&over, 5 * MIB + 1, 4);
    let five = S3Options {
        part_size: 5 * MIB,
        jobs: 2,
        ..options(&moto)
    };
    let store = S3Store::new("s3://big/five", &five).unwrap();
    store.put("exact", &FileSource::stat(&exact).unwrap()).unwrap();
    store.put("over", &FileSource::stat(&over).unwrap()).unwrap();
    assert!(!admin.etag("big", "five/exact").unwrap().contains('-'));
    assert!(admin.etag("big", "five/over").unwrap().ends_with("-2\""));
    let (over_sum, _) = hash_stream(std::fs::File::open(&over).unwrap());
    assert_eq!(hash_stream(store.open("over").unwrap().unwrap()).0, over_sum);
}

#[test]
fn a_failed_multipart_upload_is_aborted() {
    let moto = Moto::start();
    let admin = moto.admin();
    admin.create_bucket("abort");
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("shrinking");
    write_random(&file, 100 * MIB, 11);
    let opts = S3Options {
        part_size: 5 * MIB,
        jobs: 1,
        ..options(&moto)
    };
    let store = S3Store::new("s3://abort/p", &opts).unwrap();

    // Once the upload has started, cut the file to two parts: reading part 3 on fails.
    let watcher = {
        let file = file.clone();
        thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            while admin.uploads("abort").is_empty() {
                assert!(Instant::now() < deadline, "the multipart upload never started");
                thread::sleep(Duration::from_millis(2));
            }
            std::fs::OpenOptions::new()
                .write(true)
                .open(&file)
                .unwrap()
                .set_len(2 * MIB)
                .unwrap();
            admin
        })
    };
    let err = store
        .put("blobs/sha256/partial", &FileSource::stat(&file).unwrap())
        .expect_err("the upload of a file that shrank must fail");
    let admin = watcher.join().unwrap();
    let text = format!("{err:#}");
    assert!(text.contains("s3://abort/p/blobs/sha256/partial"), "{text}");
    assert!(
        text.contains("shrinking changed size during the upload (104857600 bytes, then 2097152)"),
        "{text}"
    );
    assert!(admin.uploads("abort").is_empty(), "the failed upload was aborted");
    assert_eq!(admin.etag("abort", "p/blobs/sha256/partial"), None);
    assert!(!store.exists("blobs/sha256/partial").unwrap());
}

#[test]
fn conditional_writes_honour_their_precondition() {
    let moto = Moto::start();
    moto.admin().create_bucket("cas");
    let store = S3Store::new("s3://cas/layout", &options(&moto)).unwrap();

    assert!(store.write_if("index.json", b"one", &Precondition::Absent).unwrap());
    assert!(
        !store.write_if("index.json", b"two", &Precondition::Absent).unwrap(),
        "Absent on an existing key loses"
    );
    let (bytes, v1) = store.read_versioned("index.json").unwrap().unwrap();
    assert_eq!(bytes, b"one");

    assert!(
        store
            .write_if("index.json", b"three", &Precondition::Matches(v1.clone()))
            .unwrap()
    );
    assert!(
        !store
            .write_if("index.json", b"four", &Precondition::Matches(v1))
            .unwrap(),
        "a stale version loses"
    );
    assert!(
        !store
            .write_if("missing.json", b"x", &Precondition::Matches(Version("\"0123\"".into())))
            .unwrap(),
        "If-Match on a missing key loses"
    );
    assert!(!store.exists("missing.json").unwrap());
    assert_eq!(store.read_versioned("index.json").unwrap().unwrap().0, b"three");
}

#[test]
fn sixteen_threads_increment_one_counter_without_losing_an_update() {
    let moto = Moto::start();
    moto.admin().create_bucket("race");
    let store = Arc::new(S3Store::new("s3://race", &options(&moto)).unwrap());
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let store = Arc::clone(&store);
            thread::spawn(move || {
                let mut retries = 0;
                for _ in 0..10 {
                    loop {
                        let (next, pre) = match store.read_versioned("counter").unwrap() {
                            None => (1, Precondition::Absent),
                            Some((bytes, version)) => {
                                let n: u64 = String::from_utf8(bytes).unwrap().parse().unwrap();
                                (n + 1, Precondition::Matches(version))
                            }
                        };
                        if store.write_if("counter", next.to_string().as_bytes(), &pre).unwrap() {
                            break;
                        }
                        retries += 1;
                    }
                }
                retries
            })
        })
        .collect();
    let retries: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let (bytes, _) = store.read_versioned("counter").unwrap().unwrap();
    assert_eq!(String::from_utf8(bytes).unwrap(), "160");
    assert!(retries > 0, "16 writers on one key must have collided");
}

#[test]
fn errors_name_the_bucket_and_endpoint_and_never_the_secret() {
    let moto = Moto::start();
    let store = S3Store::new("s3://no-such-bucket/x", &options(&moto)).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("f");
    std::fs::write(&file, b"data").unwrap();
    let errors = [
        store.read_versioned("index.json").map(|_| ()).unwrap_err(),
        store.put_bytes("index.json", b"{}").unwrap_err(),
        store
            .put("blobs/sha256/f", &FileSource::stat(&file).unwrap())
            .unwrap_err(),
        store.list("blobs/").map(|_| ()).unwrap_err(),
    ];
    for err in &errors {
        let text = format!("{err:#}");
        assert!(text.contains("bucket `no-such-bucket` does not exist"), "{text}");
        assert!(text.contains(&moto.endpoint), "{text}");
        assert!(text.contains("NoSuchBucket"), "{text}");
        assert!(!text.contains(SECRET_KEY) && !format!("{err:?}").contains(SECRET_KEY));
    }

    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let opts = S3Options {
        endpoint: Some(endpoint.clone()),
        ..S3Options::default()
    };
    let store = S3Store::new("s3://mirror/x", &opts).unwrap();
    let errors = [
        store.exists("oci-layout").map(|_| ()).unwrap_err(),
        store.open("oci-layout").map(|_| ()).unwrap_err(),
        store
            .write_if("index.json", b"{}", &Precondition::Absent)
            .map(|_| ())
            .unwrap_err(),
    ];
    for err in &errors {
        let text = format!("{err:#}");
        assert!(text.contains(&format!("cannot reach endpoint {endpoint}")), "{text}");
        assert!(text.contains("s3://mirror/x/"), "{text}");
        assert!(!text.contains(SECRET_KEY) && !format!("{err:?}").contains(SECRET_KEY));
    }

    // A server that knows no credentials (moto with authentication on) refuses the test keys.
    let strict = Moto::start_with_env(&[("INITIAL_NO_AUTH_ACTION_COUNT", "0")]);
    let store = S3Store::new("s3://guarded/x", &options(&strict)).unwrap();
    let errors = [
        store.exists("oci-layout").map(|_| ()).unwrap_err(),
        store.read_versioned("index.json").map(|_| ()).unwrap_err(),
    ];
    for err in &errors {
        let text = format!("{err:#}");
        assert!(text.contains("access to bucket `guarded`"), "{text}");
        assert!(text.contains(&strict.endpoint), "{text}");
        assert!(!text.contains(SECRET_KEY) && !format!("{err:?}").contains(SECRET_KEY));
    }
    assert!(format!("{:#}", errors[1]).contains("InvalidAccessKeyId"));

    let debug = format!("{store:?}");
    assert!(
        debug.contains("s3://guarded/x") && !debug.contains(SECRET_KEY),
        "{debug}"
    );

    let bad = S3Store::new("s3://", &S3Options::default()).map(|_| ()).unwrap_err();
    assert!(bad.to_string().contains("names no bucket"), "{bad}");
}

#[test]
fn the_store_refuses_to_block_inside_an_async_runtime() {
    let moto = Moto::start();
    let store = S3Store::new("s3://any", &options(&moto)).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let err = runtime
        .block_on(async { store.exists("x") })
        .expect_err("blocking inside a runtime is refused");
    assert!(err.to_string().contains("synchronous"), "{err}");
}

/// Peak memory of a 200 MiB upload with default options, measured in a fresh process (this
/// test binary running [`upload_and_report_peak_memory`] alone) whose endpoint comes from
/// `AWS_ENDPOINT_URL` through the credential chain.
#[test]
fn a_200_mib_upload_stays_under_100_mib_of_memory() {
    let moto = Moto::start();
    let admin = moto.admin();
    admin.create_bucket("rss");
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("blob");
    let sum = write_random(&file, 200 * MIB, 5);

    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "s3_store::upload_and_report_peak_memory",
            "--ignored",
            "--nocapture",
        ])
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("STACKCI_TEST_S3_FILE", &file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let peak_kib: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM_KiB="))
        .unwrap_or_else(|| panic!("no VmHWM line in:\n{stdout}"))
        .parse()
        .unwrap();
    eprintln!("peak RSS of a 200 MiB upload: {} MiB", peak_kib / 1024);
    assert!(peak_kib < 100 * 1024, "peak RSS {peak_kib} KiB");

    let etag = admin.etag("rss", "m/blob").unwrap();
    assert!(etag.ends_with("-13\""), "200 MiB in 16 MiB parts, ETag {etag}");
    let store = S3Store::new("s3://rss/m", &options(&moto)).unwrap();
    assert_eq!(hash_stream(store.open("blob").unwrap().unwrap()), (sum, 200 * MIB));
}

/// The measured half of [`a_200_mib_upload_stays_under_100_mib_of_memory`], run by it in a
/// child process.
#[test]
#[ignore = "run in a child process by a_200_mib_upload_stays_under_100_mib_of_memory"]
fn upload_and_report_peak_memory() {
    let file = std::env::var_os("STACKCI_TEST_S3_FILE").expect("STACKCI_TEST_S3_FILE");
    assert!(std::env::var_os("AWS_ENDPOINT_URL").is_some());
    let store = S3Store::new("s3://rss/m", &S3Options::default()).unwrap();
    store.put("blob", &FileSource::stat(Path::new(&file)).unwrap()).unwrap();
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let peak = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB");
    println!("VmHWM_KiB={peak}");
}
