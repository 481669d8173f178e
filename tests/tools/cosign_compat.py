#!/usr/bin/env python3
"""An independent cosign key-based signer and verifier, written from cosign's published
specs (specs/SIGNATURE_SPEC.md: tag `sha256-<hex>.sig`, simple-signing payload layers with
the `dev.cosignproject.cosign/signature` annotation, ECDSA-P256 over SHA-256) and the
go-securesystemslib "encrypted" key envelope (scrypt + NaCl secretbox). It shares no code
with stackci: crypto from Python `cryptography`, `hashlib.scrypt` and PyNaCl, storage
through the OCI layout files, boto3 (S3) or the registry HTTP API.

stackci's tests use it to prove interoperability both ways:

  cosign_compat.py keygen --out PREFIX                 (password: COSIGN_PASSWORD)
  cosign_compat.py pubkey --key FILE.key               decrypt a key, print its public PEM
  cosign_compat.py sign   --key FILE.key STORE TAG     sign TAG's manifest as cosign does
  cosign_compat.py verify --key FILE.pub STORE TAG     `cosign verify --key`, JSON result
  cosign_compat.py referrers STORE TAG [--type T]      referrers of TAG's manifest (tag schema)
  cosign_compat.py blob STORE DIGEST                   print a blob
  cosign_compat.py manifest STORE REF                  print a manifest (by tag or digest)
  cosign_compat.py put-manifest STORE TAG FILE         point TAG at the manifest in FILE

STORE is `layout:DIR`, `s3:BUCKET/PREFIX` (AWS_* and AWS_ENDPOINT_URL from the
environment) or `registry:http[s]://HOST/REPO` (REGISTRY_USER / REGISTRY_PASSWORD,
REGISTRY_CA). Exit status 0 on success, 1 on a failed verification, 2 on an error.
"""

import argparse
import base64
import hashlib
import json
import os
import ssl
import sys
import urllib.error
import urllib.request

import nacl.exceptions
import nacl.secret
import nacl.utils
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIG_ANNOTATION = "dev.cosignproject.cosign/signature"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
REF_NAME = "org.opencontainers.image.ref.name"


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


# ---- storage ------------------------------------------------------------------------

class Layout:
    """An OCI image layout in a directory."""

    def __init__(self, root):
        self.root = root

    def _index(self):
        try:
            with open(os.path.join(self.root, "index.json"), "rb") as f:
                return json.load(f)
        except FileNotFoundError:
            return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}

    def blob(self, digest):
        path = os.path.join(self.root, "blobs", "sha256", digest.split(":", 1)[1])
        try:
            with open(path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def put_blob(self, data):
        d = sha256(data)
        path = os.path.join(self.root, "blobs", "sha256", d.split(":", 1)[1])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        return d

    def manifest(self, tag):
        if tag.startswith("sha256:"):
            return self.blob(tag)
        for m in self._index().get("manifests", []):
            if m.get("annotations", {}).get(REF_NAME) == tag:
                return self.blob(m["digest"])
        return None

    def put_manifest(self, tag, media_type, data):
        d = self.put_blob(data)
        index = self._index()
        index["manifests"] = [m for m in index.get("manifests", [])
                              if m.get("annotations", {}).get(REF_NAME) != tag]
        index["manifests"].append({"mediaType": media_type, "digest": d, "size": len(data),
                                   "annotations": {REF_NAME: tag}})
        tmp = os.path.join(self.root, "index.json.tmp-compat")
        with open(tmp, "w") as f:
            json.dump(index, f)
        os.rename(tmp, os.path.join(self.root, "index.json"))
        return d

    def identity(self):
        return "file://" + os.path.abspath(self.root)


class S3Layout(Layout):
    """The same layout in an S3 bucket (read-only here)."""

    def __init__(self, spec):
        import boto3
        bucket, _, prefix = spec.partition("/")
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.s3 = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL"))

    def _key(self, name):
        return f"{self.prefix}/{name}" if self.prefix else name

    def _get(self, name):
        try:
            return self.s3.get_object(Bucket=self.bucket, Key=self._key(name))["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            return None

    def _index(self):
        data = self._get("index.json")
        return json.loads(data) if data else {"manifests": []}

    def blob(self, digest):
        return self._get("blobs/sha256/" + digest.split(":", 1)[1])

    def put_blob(self, data):
        raise SystemExit("cosign_compat: writing to S3 is not implemented")

    def put_manifest(self, tag, media_type, data):
        raise SystemExit("cosign_compat: writing to S3 is not implemented")


class Registry:
    """A repository of an OCI registry, through the distribution HTTP API (basic auth)."""

    def __init__(self, url):
        scheme, rest = url.split("://", 1)
        self.host, self.repo = rest.split("/", 1)
        self.base = f"{scheme}://{self.host}/v2/{self.repo}"
        ca = os.environ.get("REGISTRY_CA")
        self.ctx = ssl.create_default_context(cafile=ca) if ca else None
        user, pw = os.environ.get("REGISTRY_USER"), os.environ.get("REGISTRY_PASSWORD")
        self.auth = ("Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()) if user else None

    def _req(self, method, url, data=None, headers=None):
        req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
        if self.auth:
            req.add_header("Authorization", self.auth)
        try:
            with urllib.request.urlopen(req, context=self.ctx) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def blob(self, digest):
        status, _, body = self._req("GET", f"{self.base}/blobs/{digest}")
        return body if status == 200 else None

    def put_blob(self, data):
        d = sha256(data)
        status, _, _ = self._req("HEAD", f"{self.base}/blobs/{d}")
        if status == 200:
            return d
        status, headers, body = self._req("POST", f"{self.base}/blobs/uploads/")
        if status != 202:
            raise SystemExit(f"cosign_compat: upload start answered {status}: {body[:200]!r}")
        loc = headers.get("Location") or headers.get("location")
        if loc.startswith("/"):
            loc = self.base.split("/v2/")[0] + loc
        sep = "&" if "?" in loc else "?"
        status, _, body = self._req("PUT", f"{loc}{sep}digest={d}", data=data,
                                    headers={"Content-Type": "application/octet-stream"})
        if status != 201:
            raise SystemExit(f"cosign_compat: blob upload answered {status}: {body[:200]!r}")
        return d

    def manifest(self, ref):
        accept = ", ".join([OCI_MANIFEST, OCI_INDEX,
                            "application/vnd.docker.distribution.manifest.v2+json"])
        status, _, body = self._req("GET", f"{self.base}/manifests/{ref}", headers={"Accept": accept})
        return body if status == 200 else None

    def put_manifest(self, tag, media_type, data):
        status, _, body = self._req("PUT", f"{self.base}/manifests/{tag}", data=data,
                                    headers={"Content-Type": media_type})
        if status not in (200, 201):
            raise SystemExit(f"cosign_compat: manifest PUT answered {status}: {body[:200]!r}")
        return sha256(data)

    def identity(self):
        return f"{self.host}/{self.repo}"


def open_store(spec):
    kind, _, where = spec.partition(":")
    if kind == "layout":
        return Layout(where)
    if kind == "s3":
        return S3Layout(where)
    if kind == "registry":
        return Registry(where)
    raise SystemExit(f"cosign_compat: unknown store {spec!r}")


# ---- keys ---------------------------------------------------------------------------

def encrypt_key(der, password):
    """go-securesystemslib encrypted.Encrypt: scrypt(N=32768,r=8,p=1) + secretbox."""
    salt = nacl.utils.random(32)
    key = hashlib.scrypt(password, salt=salt, n=32768, r=8, p=1, maxmem=64 * 1024 * 1024, dklen=32)
    box = nacl.secret.SecretBox(key)
    nonce = nacl.utils.random(24)
    sealed = box.encrypt(der, nonce).ciphertext  # tag || ciphertext, as NaCl's secretbox
    b64 = lambda b: base64.b64encode(b).decode()
    return json.dumps({"kdf": {"name": "scrypt", "params": {"N": 32768, "r": 8, "p": 1},
                               "salt": b64(salt)},
                       "cipher": {"name": "nacl/secretbox", "nonce": b64(nonce)},
                       "ciphertext": b64(sealed)}, separators=(",", ":")).encode()


def decrypt_key(envelope, password):
    env = json.loads(envelope)
    if env["kdf"]["name"] != "scrypt" or env["cipher"]["name"] != "nacl/secretbox":
        raise SystemExit("cosign_compat: not a scrypt/secretbox envelope")
    p = env["kdf"]["params"]
    key = hashlib.scrypt(password, salt=base64.b64decode(env["kdf"]["salt"]), n=p["N"], r=p["r"],
                         p=p["p"], maxmem=256 * 1024 * 1024, dklen=32)
    box = nacl.secret.SecretBox(key)
    return box.decrypt(base64.b64decode(env["ciphertext"]), base64.b64decode(env["cipher"]["nonce"]))


def pem_blocks(text):
    """(label, bytes) of each PEM block."""
    out, label, lines = [], None, []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("-----BEGIN ") and line.endswith("-----"):
            label, lines = line[11:-5], []
        elif line.startswith("-----END ") and label:
            out.append((label, base64.b64decode("".join(lines))))
            label = None
        elif label:
            lines.append(line)
    return out


def load_private(path):
    password = os.environ.get("COSIGN_PASSWORD", "").encode()
    label, data = pem_blocks(open(path).read())[0]
    if label in ("ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY"):
        data = decrypt_key(data, password)
    elif label != "PRIVATE KEY":
        raise SystemExit(f"cosign_compat: unsupported key {label}")
    key = serialization.load_der_private_key(data, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise SystemExit("cosign_compat: not an ECDSA P-256 key")
    return key


def public_pem(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


# ---- signatures ---------------------------------------------------------------------

def sig_tag(digest):
    return digest.replace(":", "-") + ".sig"


def payload_for(identity, digest):
    return json.dumps({"critical": {"identity": {"docker-reference": identity},
                                    "image": {"docker-manifest-digest": digest},
                                    "type": "cosign container image signature"},
                       "optional": None}, separators=(",", ":")).encode()


def sign(store, key, tag):
    manifest = store.manifest(tag)
    if manifest is None:
        raise SystemExit(f"cosign_compat: no manifest {tag}")
    digest = sha256(manifest)
    payload = payload_for(store.identity(), digest)
    sig = key.sign(payload, ec.ECDSA(hashes.SHA256()))  # DER
    layer = {"mediaType": SIMPLESIGNING, "size": len(payload), "digest": store.put_blob(payload),
             "annotations": {SIG_ANNOTATION: base64.b64encode(sig).decode()}}
    layers = []
    existing = store.manifest(sig_tag(digest))
    if existing:
        layers = json.loads(existing).get("layers", [])
    layers.append(layer)
    config = json.dumps({"architecture": "", "created": "0001-01-01T00:00:00Z", "os": "",
                         "rootfs": {"type": "layers", "diff_ids": [l["digest"] for l in layers]},
                         "config": {}}, separators=(",", ":")).encode()
    sig_manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                               "config": {"mediaType": OCI_CONFIG, "size": len(config),
                                          "digest": store.put_blob(config)},
                               "layers": layers}, separators=(",", ":")).encode()
    store.put_manifest(sig_tag(digest), OCI_MANIFEST, sig_manifest)
    return digest


def verify(store, pub, tag):
    """cosign verify --key (key-based, no transparency log): returns a result dict."""
    manifest = store.manifest(tag)
    if manifest is None:
        return {"ok": False, "error": f"no manifest {tag}"}
    digest = sha256(manifest)
    sig_manifest = store.manifest(sig_tag(digest))
    if sig_manifest is None:
        return {"ok": False, "digest": digest, "error": f"no signature tag {sig_tag(digest)}"}
    errors = []
    for layer in json.loads(sig_manifest).get("layers", []):
        if layer.get("mediaType") != SIMPLESIGNING:
            continue
        payload = store.blob(layer["digest"])
        if payload is None or sha256(payload) != layer["digest"]:
            errors.append("payload missing or does not match its digest")
            continue
        try:
            sig = base64.b64decode(layer["annotations"][SIG_ANNOTATION], validate=True)
            pub.verify(sig, payload, ec.ECDSA(hashes.SHA256()))
        except (KeyError, ValueError, InvalidSignature) as e:
            errors.append(f"signature does not verify ({type(e).__name__})")
            continue
        claims = json.loads(payload)
        crit = claims["critical"]
        if crit.get("type") != "cosign container image signature":
            errors.append(f"wrong payload type {crit.get('type')!r}")
            continue
        if crit["image"]["docker-manifest-digest"] != digest:
            errors.append(f"payload is for {crit['image']['docker-manifest-digest']}, not {digest}")
            continue
        return {"ok": True, "digest": digest, "payload": claims,
                "docker-reference": crit["identity"]["docker-reference"]}
    return {"ok": False, "digest": digest, "error": "; ".join(errors) or "no simple-signing layer"}


# ---- CLI ----------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("keygen"); k.add_argument("--out", required=True)
    p = sub.add_parser("pubkey"); p.add_argument("--key", required=True)
    s = sub.add_parser("sign"); s.add_argument("--key", required=True); s.add_argument("store"); s.add_argument("tag")
    v = sub.add_parser("verify"); v.add_argument("--key", required=True); v.add_argument("store"); v.add_argument("tag")
    r = sub.add_parser("referrers"); r.add_argument("store"); r.add_argument("tag"); r.add_argument("--type")
    b = sub.add_parser("blob"); b.add_argument("store"); b.add_argument("digest")
    m = sub.add_parser("manifest"); m.add_argument("store"); m.add_argument("ref")
    pm = sub.add_parser("put-manifest"); pm.add_argument("store"); pm.add_argument("tag"); pm.add_argument("file")
    a = ap.parse_args()

    if a.cmd == "keygen":
        key = ec.generate_private_key(ec.SECP256R1())
        der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        body = base64.b64encode(encrypt_key(der, os.environ.get("COSIGN_PASSWORD", "").encode())).decode()
        lines = [body[i:i + 64] for i in range(0, len(body), 64)]
        with open(a.out + ".key", "w") as f:
            f.write("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n" + "\n".join(lines)
                    + "\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
        with open(a.out + ".pub", "wb") as f:
            f.write(public_pem(key))
    elif a.cmd == "pubkey":
        sys.stdout.write(public_pem(load_private(a.key)).decode())
    elif a.cmd == "sign":
        print(sign(open_store(a.store), load_private(a.key), a.tag))
    elif a.cmd == "verify":
        pub = serialization.load_pem_public_key(open(a.key, "rb").read())
        result = verify(open_store(a.store), pub, a.tag)
        print(json.dumps(result))
        return 0 if result["ok"] else 1
    elif a.cmd == "referrers":
        store = open_store(a.store)
        manifest = store.manifest(a.tag)
        if manifest is None:
            raise SystemExit(f"cosign_compat: no manifest {a.tag}")
        index = store.manifest(sha256(manifest).replace(":", "-"))
        found = json.loads(index)["manifests"] if index else []
        print(json.dumps([d for d in found if not a.type or d.get("artifactType") == a.type]))
    elif a.cmd == "blob":
        data = open_store(a.store).blob(a.digest)
        if data is None or sha256(data) != a.digest:
            raise SystemExit(f"cosign_compat: blob {a.digest} missing or corrupt")
        sys.stdout.buffer.write(data)
    elif a.cmd == "manifest":
        data = open_store(a.store).manifest(a.ref)
        if data is None:
            raise SystemExit(f"cosign_compat: no manifest {a.ref}")
        sys.stdout.buffer.write(data)
    elif a.cmd == "put-manifest":
        data = open(a.file, "rb").read()
        print(open_store(a.store).put_manifest(a.tag, json.loads(data).get("mediaType", OCI_MANIFEST), data))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except nacl.exceptions.CryptoError:
        print("cosign_compat: wrong password", file=sys.stderr)
        sys.exit(2)
