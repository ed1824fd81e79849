//! HTTPS front of the emulator: a self-signed CA and a server certificate
//! for 127.0.0.1/localhost made at start (rcgen), rustls on the aws-lc-rs
//! provider (the one reqwest already uses), hyper 1 HTTP/1.1.

use super::state::{EmuRequest, EmuResponse, Fault, Principal, Seed, State};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::net::TcpListener;

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmulatorError {
    #[error("certificate generation failed: {0}")]
    Cert(String),
    #[error("TLS configuration failed: {0}")]
    Tls(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen on 127.0.0.1: {0}")]
    Bind(std::io::Error),
    #[error("invalid seed: {0}")]
    Seed(String),
    #[error("cannot start the emulator's thread or runtime: {0}")]
    Runtime(std::io::Error),
    #[error("the emulator's thread stopped before it listened")]
    Stopped,
}

/// A CA certificate (PEM, for clients) and the server's chain and key.
pub struct Certs {
    pub ca_pem: String,
    chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
}

/// Makes a throw-away CA and a server certificate for 127.0.0.1 and localhost.
pub fn make_certs() -> Result<Certs, EmulatorError> {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let cert_err = |e: rcgen::Error| EmulatorError::Cert(e.to_string());
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "mlscaler arm-emulator test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().map_err(cert_err)?;
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).map_err(cert_err)?;
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .map_err(cert_err)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "arm-emulator");
    let key = KeyPair::generate().map_err(cert_err)?;
    let cert = params.signed_by(&key, &ca).map_err(cert_err)?;
    let key_der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der())
        .map_err(|e| EmulatorError::Cert(e.to_string()))?;
    Ok(Certs {
        ca_pem: ca.pem(),
        chain: vec![cert.der().clone(), ca.der().clone()],
        key: key_der,
    })
}

/// A running emulator (the server task runs on the caller's runtime).
pub struct Running {
    pub addr: SocketAddr,
    pub base_url: String,
    pub ca_path: PathBuf,
    pub state: Arc<Mutex<State>>,
}

/// Binds 127.0.0.1 on a free port, writes the CA PEM to `dir/ca.pem`, and
/// serves until the runtime stops.
pub async fn start(
    seed: &Seed,
    principal: Principal,
    dir: &Path,
) -> Result<Running, EmulatorError> {
    let certs = make_certs()?;
    let ca_path = dir.join("ca.pem");
    std::fs::write(&ca_path, &certs.ca_pem).map_err(|source| EmulatorError::Write {
        path: ca_path.clone(),
        source,
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| EmulatorError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs.chain, certs.key)
        .map_err(|e| EmulatorError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(EmulatorError::Bind)?;
    let addr = listener.local_addr().map_err(EmulatorError::Bind)?;
    let base_url = format!("https://127.0.0.1:{}", addr.port());
    let state = Arc::new(Mutex::new(
        State::new(seed, principal, &base_url).map_err(EmulatorError::Seed)?,
    ));
    let shared = state.clone();
    let release = Arc::new(tokio::sync::Notify::new());
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            // Answers go out at once, as from ARM's front ends: with Nagle's
            // algorithm a small TLS record waits for the client's delayed ACK
            // (~40 ms on Linux), which the bench measured as half a decision.
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let state = shared.clone();
            let release = release.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = service_fn(move |req| serve(state.clone(), release.clone(), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    Ok(Running {
        addr,
        base_url,
        ca_path,
        state,
    })
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// Serves one request; `Err` closes the connection without an answer (a
/// fault's `dropConnection`).
async fn serve(
    state: Arc<Mutex<State>>,
    release: Arc<tokio::sync::Notify>,
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, std::io::Error> {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let headers: HashMap<String, String> = req
        .headers()
        .iter()
        .filter_map(|(k, v)| {
            Some((
                k.as_str().to_ascii_lowercase(),
                v.to_str().ok()?.to_string(),
            ))
        })
        .collect();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes().to_vec(),
        Err(_) => Vec::new(),
    };
    let rsp = if method == "POST" && path == "/_emulator/release" {
        // Every answer held so far goes out now.
        release.notify_waiters();
        EmuResponse {
            status: 200,
            headers: Vec::new(),
            body: Some(json!({})),
            delay: None,
            hold: false,
            drop: false,
        }
    } else if path.starts_with("/_emulator/") {
        admin(&state, &method, &path, &body)
    } else {
        let er = EmuRequest {
            method,
            path,
            query,
            headers,
            body,
        };
        let rsp = lock(&state).handle(&er, Instant::now());
        if rsp.hold {
            let most = rsp.delay.unwrap_or(std::time::Duration::from_secs(60));
            tokio::select! {
                _ = release.notified() => {}
                _ = tokio::time::sleep(most) => {}
            }
        } else if let Some(d) = rsp.delay {
            tokio::time::sleep(d).await;
        }
        rsp
    };
    if rsp.drop {
        return Err(std::io::Error::other(
            "connection dropped by an injected fault",
        ));
    }
    Ok(to_hyper(rsp))
}

fn to_hyper(rsp: EmuResponse) -> hyper::Response<Full<Bytes>> {
    let mut b = hyper::Response::builder().status(rsp.status);
    for (k, v) in &rsp.headers {
        b = b.header(k, v);
    }
    let body = match &rsp.body {
        Some(v) => {
            if !rsp
                .headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            {
                b = b.header("Content-Type", "application/json; charset=utf-8");
            }
            Bytes::from(serde_json::to_vec(v).unwrap_or_default())
        }
        None => Bytes::new(),
    };
    b.body(Full::new(body))
        .unwrap_or_else(|_| hyper::Response::new(Full::new(Bytes::new())))
}

fn admin(state: &Mutex<State>, method: &str, path: &str, body: &[u8]) -> EmuResponse {
    let ok = |v: Value| EmuResponse {
        status: 200,
        headers: Vec::new(),
        body: Some(v),
        delay: None,
        hold: false,
        drop: false,
    };
    let bad = |msg: String| EmuResponse {
        status: 400,
        headers: Vec::new(),
        body: Some(json!({"error": {"code": "BadRequest", "message": msg}})),
        delay: None,
        hold: false,
        drop: false,
    };
    match (method, path) {
        ("GET", "/_emulator/state") => ok(lock(state).snapshot()),
        ("GET", "/_emulator/requests") => ok(json!(lock(state).log())),
        ("DELETE", "/_emulator/requests") => {
            lock(state).clear_log();
            ok(json!({}))
        }
        ("POST", "/_emulator/faults") => {
            let faults: Result<Vec<Fault>, _> = serde_json::from_slice::<Vec<Fault>>(body)
                .or_else(|_| serde_json::from_slice::<Fault>(body).map(|f| vec![f]));
            match faults {
                Ok(f) => {
                    let n = f.len();
                    lock(state).add_faults(f);
                    ok(json!({"added": n}))
                }
                Err(e) => bad(format!("invalid fault: {e}")),
            }
        }
        ("DELETE", "/_emulator/faults") => {
            lock(state).clear_faults();
            ok(json!({}))
        }
        _ => EmuResponse {
            status: 404,
            headers: Vec::new(),
            body: Some(
                json!({"error": {"code": "NotFound", "message": format!("no admin route {method} {path}")}}),
            ),
            delay: None,
            hold: false,
            drop: false,
        },
    }
}
