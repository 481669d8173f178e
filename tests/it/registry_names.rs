//! Registry names as users write them (issue 14, item 3), without the network: stackci runs
//! with `HTTP_PROXY` pointing at a stand-in that plays Docker Hub (`registry-1.docker.io`,
//! forwarding to the real docker-registry peer) and its token service (`auth.docker.io`).
//! The mirror, the base and `--to` are all written as `docker.io` names; the stand-in sees
//! which host each request was for, and skopeo then reads what landed in the peer.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::{Arc, Mutex};

use crate::common::fault_proxy::{Action, Proxy, RequestHead};
use crate::common::registry::Peer;
use crate::common::*;

/// One request the stand-in saw: the host it was for, the path, and the token scopes.
#[derive(Debug, Clone)]
struct Seen {
    host: String,
    path: String,
    query: Vec<(String, String)>,
    basic: Option<String>,
}

/// Docker Hub's shape: the registry answers 401 with a Bearer challenge naming
/// `auth.docker.io`, whose `/token` issues tokens to `hubuser:hubpass`.
fn hub(head: &RequestHead, seen: &Mutex<Vec<Seen>>) -> Action {
    // A request through an HTTP proxy names the absolute URL.
    let rest = head.target.strip_prefix("http://").unwrap_or(&head.target);
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let path = format!("/{}", path.split('?').next().unwrap_or_default());
    let basic = head
        .header("authorization")
        .and_then(|a| a.strip_prefix("Basic "))
        .and_then(|b| data_encoding::BASE64.decode(b.as_bytes()).ok())
        .and_then(|b| String::from_utf8(b).ok());
    seen.lock().unwrap().push(Seen {
        host: host.to_string(),
        path: path.clone(),
        query: head.query(),
        basic: basic.clone(),
    });
    let respond = |status: u16, headers: Vec<(String, String)>, body: &[u8]| Action::Respond {
        status,
        headers,
        body: body.to_vec(),
    };
    match host {
        "auth.docker.io" if path == "/token" => {
            if basic.as_deref() != Some("hubuser:hubpass") {
                return respond(401, vec![], b"{}");
            }
            respond(
                200,
                vec![("Content-Type".into(), "application/json".into())],
                br#"{"token":"hub-token","expires_in":300}"#,
            )
        }
        "registry-1.docker.io" => {
            if head.header("authorization") == Some("Bearer hub-token") {
                return Action::Forward;
            }
            respond(
                401,
                vec![(
                    "WWW-Authenticate".into(),
                    r#"Bearer realm="http://auth.docker.io/token",service="registry.docker.io""#.into(),
                )],
                br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
            )
        }
        _ => respond(502, vec![], b"not Docker Hub"),
    }
}

#[test]
fn docker_io_names_reach_registry_1_with_library_and_auth_docker_io_tokens() {
    require("skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(&tmp.path().join("reg"), false);
    let seen = Arc::new(Mutex::new(Vec::<Seen>::new()));
    let seen2 = Arc::clone(&seen);
    let proxy = Proxy::start(peer.host(), move |head| hub(head, &seen2));

    // Credentials as `docker login` stores them for Docker Hub.
    let docker = tmp.path().join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    let auth = data_encoding::BASE64.encode(b"hubuser:hubpass");
    std::fs::write(
        docker.join("config.json"),
        format!(r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
    let dir = tmp.path().join("stack");
    let stack = write_stack(
        &dir,
        &tmp.path().join("store"),
        &[(
            "tool",
            &[],
            "mkdir -p \"$PREFIX/bin\"\necho tool > \"$PREFIX/bin/tool\"",
        )],
    );
    let mut text = std::fs::read_to_string(&stack).unwrap();
    text.push_str("images:\n  app:\n    base: oci+http://index.docker.io/team/mirror:BASE\n    packages: [tool]\n");
    let run = |args: &[&str]| {
        let mut cmd = stackci();
        cmd.current_dir(&dir)
            .env("HTTP_PROXY", format!("http://{}", proxy.host()))
            .env("http_proxy", format!("http://{}", proxy.host()))
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .env("DOCKER_CONFIG", &docker)
            .env("HOME", tmp.path())
            .args(["--mirror", "oci+http://docker.io/team/mirror"])
            .args(args);
        ok(&mut cmd)
    };
    run(&["run"]);
    let plan = run(&["plan", "--json"]);
    let tag = plan_statuses(&plan)[0].0.clone();
    // The package is itself an image: use it as the base, named as a Docker Hub user would.
    std::fs::write(&stack, text.replace("BASE", &tag)).unwrap();
    run(&["image", "app", "--to", "oci+http://docker.io/app:1"]);

    // Everything went to Docker Hub's API host; tokens came from auth.docker.io.
    let seen = seen.lock().unwrap().clone();
    let hosts: std::collections::BTreeSet<&str> = seen.iter().map(|s| s.host.as_str()).collect();
    assert_eq!(
        hosts,
        ["auth.docker.io", "registry-1.docker.io"].into(),
        "no request to docker.io or index.docker.io: {seen:#?}"
    );
    let registry_paths: Vec<&str> = seen
        .iter()
        .filter(|s| s.host == "registry-1.docker.io")
        .map(|s| s.path.as_str())
        .collect();
    assert!(
        registry_paths.iter().any(|p| p.starts_with("/v2/team/mirror/")),
        "{registry_paths:?}"
    );
    assert!(
        registry_paths
            .iter()
            .any(|p| p.starts_with("/v2/library/app/manifests/1")),
        "a single name is under library/: {registry_paths:?}"
    );
    let tokens: Vec<&Seen> = seen.iter().filter(|s| s.host == "auth.docker.io").collect();
    assert!(!tokens.is_empty());
    for t in &tokens {
        assert_eq!(t.basic.as_deref(), Some("hubuser:hubpass"), "{t:?}");
        let q: BTreeMap<&str, &str> = t.query.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(q.get("service"), Some(&"registry.docker.io"), "{t:?}");
    }
    let scopes: Vec<&str> = tokens
        .iter()
        .flat_map(|t| t.query.iter().filter(|(k, _)| k == "scope").map(|(_, v)| v.as_str()))
        .collect();
    assert!(scopes.contains(&"repository:library/app:pull,push"), "{scopes:?}");
    assert!(scopes.contains(&"repository:team/mirror:pull"), "{scopes:?}");

    // What landed in the registry is where Docker Hub would keep it.
    let raw = ok(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}/library/app:1", peer.host()),
    ]));
    let manifest: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 2, "base + tool: {raw}");
}
