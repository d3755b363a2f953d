//! A registry for unit tests: the distribution endpoints dpy calls (manifests by tag and
//! digest, blob uploads), held in memory, on a random port of 127.0.0.1. A test makes it
//! answer a request otherwise (`answer`), as a hostile registry or another push to the
//! same tag would, and counts what it was asked (`count`) instead of timing anything.
//!
//! One request per connection (every answer says `Connection: close`): the clients
//! reconnect, and the server needs no framing beyond Content-Length.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{sha256_digest, Destination};

/// What the registry answers to one request, instead of what it holds.
#[derive(Clone)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
    /// The Docker-Content-Digest header; the body's own digest when None.
    pub digest: Option<String>,
}

impl Answer {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Answer {
        Answer {
            status,
            content_type: content_type.to_string(),
            body: body.into(),
            digest: None,
        }
    }

    /// An error envelope with one error `code`, as the distribution spec writes it.
    pub fn error(status: u16, code: &str, message: &str) -> Answer {
        let body = serde_json::json!({"errors": [{"code": code, "message": message}]});
        Answer::new(status, "application/json", body.to_string())
    }
}

#[derive(Default)]
struct State {
    /// `name/reference` (a tag or a digest): content type and bytes.
    manifests: HashMap<String, (String, Vec<u8>)>,
    blobs: HashMap<String, Vec<u8>>,
    uploads: HashMap<String, Vec<u8>>,
    /// `METHOD /path`: answered so, whatever is held.
    answers: HashMap<String, Answer>,
    /// `METHOD /path?query`, in the order asked.
    requests: Vec<String>,
}

pub struct Fake {
    /// `127.0.0.1:PORT`.
    pub registry: String,
    state: Arc<Mutex<State>>,
}

impl Fake {
    pub async fn start() -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let registry = listener.local_addr().unwrap().to_string();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, shared.clone()));
            }
        });
        Fake { registry, state }
    }

    /// The repository `name` in this registry, as `--repository` would give it.
    pub fn destination(&self, name: &str) -> Destination {
        Destination::parse(&format!("{}/{name}", self.registry)).unwrap()
    }

    /// From now on, `method path` is answered with `answer`.
    pub fn answer(&self, method: &str, path: &str, answer: Answer) {
        self.state
            .lock()
            .unwrap()
            .answers
            .insert(format!("{method} {path}"), answer);
    }

    /// How many requests were `method` to a path that contains `path`.
    pub fn count(&self, method: &str, path: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .requests
            .iter()
            .filter(|r| {
                r.split_once(' ')
                    .is_some_and(|(m, p)| m == method && p.contains(path))
            })
            .count()
    }

    /// The manifest held under `name/reference`.
    pub fn manifest(&self, name: &str, reference: &str) -> Option<Vec<u8>> {
        let state = self.state.lock().unwrap();
        let held = state.manifests.get(&format!("{name}/{reference}"));
        held.map(|(_, bytes)| bytes.clone())
    }

    /// Holds `data` as a blob; returns its digest.
    pub fn hold_blob(&self, data: &[u8]) -> String {
        let digest = sha256_digest(data);
        let mut state = self.state.lock().unwrap();
        state.blobs.insert(digest.clone(), data.to_vec());
        digest
    }

    /// Holds `bytes` under `name/tag` and `name/digest`, as a push would.
    pub fn hold_manifest(&self, name: &str, tag: &str, content_type: &str, bytes: &[u8]) {
        let mut state = self.state.lock().unwrap();
        let held = (content_type.to_string(), bytes.to_vec());
        state
            .manifests
            .insert(format!("{name}/{}", sha256_digest(bytes)), held.clone());
        state.manifests.insert(format!("{name}/{tag}"), held);
    }
}

async fn serve(mut stream: TcpStream, state: Arc<Mutex<State>>) {
    let mut received = Vec::new();
    let mut chunk = [0u8; 16384];
    let head_end = loop {
        if let Some(i) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => received.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&received[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request = lines.next().unwrap_or_default().split(' ');
    let (method, target) = (
        request.next().unwrap_or_default().to_string(),
        request.next().unwrap_or_default().to_string(),
    );
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = received[head_end..].to_vec();
    while body.len() < length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    let content_type = headers.get("content-type").cloned().unwrap_or_default();
    let (status, extra, payload) = respond(&state, &method, &target, &content_type, body);
    let mut out = format!(
        "HTTP/1.1 {status} Fake\r\nContent-Length: {}\r\nConnection: close\r\n",
        payload.len()
    );
    for (name, value) in extra {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    if method != "HEAD" {
        out.extend_from_slice(&payload);
    }
    let _ = stream.write_all(&out).await;
    let _ = stream.shutdown().await;
}

type Response = (u16, Vec<(&'static str, String)>, Vec<u8>);

fn respond(
    state: &Mutex<State>,
    method: &str,
    target: &str,
    content_type: &str,
    body: Vec<u8>,
) -> Response {
    let mut state = state.lock().unwrap();
    state.requests.push(format!("{method} {target}"));
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if let Some(answer) = state.answers.get(&format!("{method} {path}")) {
        let digest = answer
            .digest
            .clone()
            .unwrap_or_else(|| sha256_digest(&answer.body));
        return (
            answer.status,
            vec![
                ("Content-Type", answer.content_type.clone()),
                ("Docker-Content-Digest", digest),
            ],
            answer.body.clone(),
        );
    }
    let unknown = |code: &str| {
        let body = serde_json::json!({"errors": [{"code": code, "message": "unknown"}]});
        (404, Vec::new(), body.to_string().into_bytes())
    };
    if path == "/v2/" {
        return (200, Vec::new(), b"{}".to_vec());
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return unknown("NOT_FOUND");
    };
    if let Some((name, reference)) = rest.rsplit_once("/manifests/") {
        if method == "PUT" {
            let digest = sha256_digest(&body);
            let held = (content_type.to_string(), body);
            state
                .manifests
                .insert(format!("{name}/{reference}"), held.clone());
            state.manifests.insert(format!("{name}/{digest}"), held);
            let location = format!("/v2/{name}/manifests/{digest}");
            return (
                201,
                vec![("Location", location), ("Docker-Content-Digest", digest)],
                Vec::new(),
            );
        }
        return match state.manifests.get(&format!("{name}/{reference}")) {
            Some((content_type, bytes)) => (
                200,
                vec![
                    ("Content-Type", content_type.clone()),
                    ("Docker-Content-Digest", sha256_digest(bytes)),
                ],
                bytes.clone(),
            ),
            None => unknown("MANIFEST_UNKNOWN"),
        };
    }
    if let Some((name, id)) = rest.rsplit_once("/blobs/uploads/") {
        let id = match (method, id) {
            ("POST", "") => {
                let id = state.uploads.len().to_string();
                state.uploads.insert(id.clone(), Vec::new());
                id
            }
            _ => id.to_string(),
        };
        let Some(upload) = state.uploads.get_mut(&id) else {
            return unknown("BLOB_UPLOAD_UNKNOWN");
        };
        upload.extend_from_slice(&body);
        let location = format!("/v2/{name}/blobs/uploads/{id}");
        if method != "PUT" {
            return (202, vec![("Location", location)], Vec::new());
        }
        let data = upload.clone();
        let wanted = query
            .split('&')
            .find_map(|p| p.strip_prefix("digest="))
            .unwrap_or_default()
            .replace("%3A", ":");
        if sha256_digest(&data) != wanted {
            let body = serde_json::json!({"errors": [{"code": "DIGEST_INVALID"}]});
            return (400, Vec::new(), body.to_string().into_bytes());
        }
        state.blobs.insert(wanted.clone(), data);
        let location = format!("/v2/{name}/blobs/{wanted}");
        return (201, vec![("Location", location)], Vec::new());
    }
    if let Some((_, digest)) = rest.rsplit_once("/blobs/") {
        return match state.blobs.get(digest) {
            Some(data) => (200, Vec::new(), data.clone()),
            None => unknown("BLOB_UNKNOWN"),
        };
    }
    unknown("NOT_FOUND")
}
