//! The emulator started in-process (`arm_emulator::spawn`, as mlscaler's
//! tests start it): HTTPS on 127.0.0.1 with the CA it wrote, admin
//! endpoints, and nothing listening any more once the handle is dropped.

use arm_emulator::{Principal, Seed};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

fn principal() -> Principal {
    Principal {
        tenant: "t1".into(),
        client_id: "c1".into(),
        client_secret: "s1".into(),
    }
}

/// One HTTP/1.1 request over TLS, trusting only the emulator's CA; the
/// status and the JSON body.
fn https(emu: &arm_emulator::Handle, method: &str, path: &str, body: &str) -> (u16, Value) {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(&emu.ca_path).expect("the CA is PEM"))
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, TcpStream::connect(emu.addr).unwrap());
    write!(
        tls,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    let _ = tls.read_to_string(&mut raw);
    let status = raw[9..12].parse().unwrap();
    let payload = raw.split("\r\n\r\n").nth(1).unwrap_or("");
    (status, serde_json::from_str(payload).unwrap_or(Value::Null))
}

#[test]
fn it_serves_https_with_the_ca_it_wrote_and_stops_when_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let seed: Seed = serde_json::from_value(json!({"scaleSets": [{
        "subscription": "s", "resourceGroup": "rg", "name": "ss", "skuName": "Standard_D2s_v5", "capacity": 2}]}))
    .unwrap();
    let emu = arm_emulator::spawn(&seed, principal(), dir.path()).unwrap();
    assert_eq!(emu.ca_path, dir.path().join("ca.pem"));
    assert_eq!(
        emu.base_url,
        format!("https://127.0.0.1:{}", emu.addr.port())
    );

    let (status, state) = https(&emu, "GET", "/_emulator/state", "");
    assert_eq!(status, 200);
    assert_eq!(state["scaleSets"][0]["capacity"], 2);
    let (status, added) = https(
        &emu,
        "POST",
        "/_emulator/faults",
        r#"[{"status": 503}, {"delayMs": 5}]"#,
    );
    assert_eq!((status, added), (200, json!({"added": 2})));
    assert_eq!(
        emu.state.lock().unwrap().snapshot()["faults"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let (status, _) = https(&emu, "POST", "/_emulator/faults", r#"{"nope": 1}"#);
    assert_eq!(status, 400);
    // An ARM call without a token: 401, and logged.
    let (status, _) = https(&emu, "GET", "/subscriptions/s/resourceGroups/rg", "");
    assert_eq!(status, 401);
    let (_, log) = https(&emu, "GET", "/_emulator/requests", "");
    assert_eq!(log.as_array().unwrap().len(), 1);

    let addr = emu.addr;
    drop(emu);
    assert!(
        TcpStream::connect(addr).is_err(),
        "still listening on {addr} after drop"
    );
}

#[test]
fn an_invalid_seed_is_an_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let seed: Seed = serde_json::from_value(json!({"clusters": [{
        "subscription": "s", "resourceGroup": "rg", "name": "aks",
        "pools": [{"name": "np1", "properties": {"vmSize": "Standard_D2s_v5"}}]}]}))
    .unwrap();
    let err = arm_emulator::spawn(&seed, principal(), dir.path())
        .err()
        .expect("a pool without a count is refused");
    assert!(err.to_string().contains("properties.count"), "{err}");
}
