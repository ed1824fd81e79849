//! `BlobStore` against the Azurite emulator (started by `scripts/test`).

#[path = "support/azurite.rs"]
mod azurite;

use azurite::{Azurite, KEY};
use mlscaler::azure::{self, Secret, StorageSettings};
use mlscaler::store::{ObjectStore, StoreError};

/// A different, well-formed key for the same account.
const WRONG_KEY: &str =
    "AAAAvdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

fn assert_no_secret(text: &str) {
    for s in [KEY, WRONG_KEY, "sig=", "Eby8vdM02x", "AAAAvdM02x"] {
        assert!(!text.contains(s), "secret-looking '{s}' in: {text}");
    }
}

#[test]
fn objects_round_trip_and_a_put_replaces_the_whole_object() {
    let Some(az) = Azurite::from_env() else {
        return;
    };
    let c = az.create_container("roundtrip");
    let s = az.store(&c);
    s.put("models/m1/artifact.bin", b"first version, long")
        .unwrap();
    assert_eq!(
        s.get("models/m1/artifact.bin").unwrap(),
        b"first version, long"
    );
    s.put("models/m1/artifact.bin", b"v2").unwrap();
    assert_eq!(s.get("models/m1/artifact.bin").unwrap(), b"v2");
    s.put("empty", b"").unwrap();
    assert_eq!(s.get("empty").unwrap(), b"");
    let big: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
    s.put("big.bin", &big).unwrap();
    assert_eq!(s.get("big.bin").unwrap(), big);
    s.put("with space/ü.csv", b"x").unwrap();
    assert_eq!(s.get("with space/ü.csv").unwrap(), b"x");
}

#[test]
fn list_pages_through_everything_under_a_prefix_in_name_order() {
    let Some(az) = Azurite::from_env() else {
        return;
    };
    let c = az.create_container("list");
    let s = az.store(&c).with_page_size(25);
    // Insert out of order; 130 objects under the prefix cross several pages.
    let mut expected = Vec::new();
    for i in (0..130).rev() {
        let name = format!("data/part-{:04}.csv", (i * 37) % 130);
        s.put(&name, name.as_bytes()).unwrap();
        expected.push(name);
    }
    s.put("data.csv", b"outside").unwrap();
    s.put("other/x.csv", b"outside").unwrap();
    expected.sort();
    assert_eq!(s.list("data/").unwrap(), expected);
    let all = s.list("").unwrap();
    assert_eq!(all.len(), 132);
    assert!(all.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(s.list("data").unwrap().len(), 131);
    assert!(s.list("nothing/").unwrap().is_empty());
}

#[test]
fn a_store_under_a_prefix_uses_names_relative_to_it() {
    let Some(az) = Azurite::from_env() else {
        return;
    };
    let c = az.create_container("under");
    az.upload(&c, "registry/m/1.card.json", b"{}");
    az.upload(&c, "registry-old/x", b"no");
    let (root, path) = azure::open(&az.key_settings(&c, "registry/")).unwrap();
    assert_eq!(path, "registry/");
    let reg = root.under(&path);
    assert_eq!(reg.list("").unwrap(), vec!["m/1.card.json"]);
    reg.put("m/pointer.json", b"1").unwrap();
    assert_eq!(root.get("registry/m/pointer.json").unwrap(), b"1");
    assert!(
        reg.describe().ends_with(&format!("/{c}/registry")),
        "{}",
        reg.describe()
    );
}

#[test]
fn missing_objects_and_containers_are_not_found() {
    let Some(az) = Azurite::from_env() else {
        return;
    };
    let c = az.create_container("missing");
    let s = az.store(&c);
    let e = s.get("nope.csv").unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert!(e.to_string().contains("nope.csv"), "{e}");
    let gone = az.store(&azurite::unique_name("never-created"));
    assert!(gone.get("x").unwrap_err().is_not_found());
    assert!(gone.list("").unwrap_err().is_not_found());
    let e = gone.put("x", b"1").unwrap_err();
    assert!(e.to_string().contains("container does not exist"), "{e}");
    assert!(matches!(
        s.get("../escape"),
        Err(StoreError::InvalidLocation(_))
    ));
}

#[test]
fn a_wrong_key_is_denied_without_leaking_the_key_or_signature() {
    let Some(az) = Azurite::from_env() else {
        return;
    };
    let c = az.create_container("denied");
    az.upload(&c, "a.csv", b"1");
    let settings = StorageSettings {
        url: Some(az.url(&c, "")),
        account_key: Some(Secret::new(WRONG_KEY)),
        ..Default::default()
    };
    let (s, _) = azure::open(&settings).unwrap();
    for e in [
        s.get("a.csv").unwrap_err(),
        s.list("").unwrap_err(),
        s.put("b.csv", b"2").unwrap_err(),
    ] {
        assert!(matches!(e, StoreError::Denied { .. }), "{e:?}");
        let text = format!("{e} {e:?}");
        assert!(text.contains("403"), "{text}");
        assert_no_secret(&text);
    }
    assert_no_secret(&format!("{s:?} {}", s.describe()));
}

#[test]
fn a_read_only_sas_url_reads_and_lists_but_cannot_write() {
    let Some(az) = Azurite::from_env() else {
        return;
    };
    let c = az.create_container("sasurl");
    az.upload(&c, "in/b.csv", b"b");
    az.upload(&c, "in/a.csv", b"a");
    let url = az.sas_url(&c, "in/", "rl");
    let (s, prefix) = azure::open(&StorageSettings {
        url: Some(url),
        // A SAS in the URL wins over these.
        account_key: Some(Secret::new(WRONG_KEY)),
        connection_string: Some(Secret::new(
            "AccountName=devstoreaccount1;AccountKey=AAAAvdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
        )),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(s.auth_kind(), "sas");
    assert_eq!(prefix, "in/");
    assert_eq!(s.list(&prefix).unwrap(), vec!["in/a.csv", "in/b.csv"]);
    assert_eq!(s.get("in/a.csv").unwrap(), b"a");
    let e = s.put("in/c.csv", b"c").unwrap_err();
    assert!(matches!(e, StoreError::Denied { .. }), "{e:?}");
    assert_no_secret(&format!("{e} {e:?} {} {s:?}", s.describe()));
}

#[test]
fn a_connection_string_with_a_key_reads_and_writes() {
    let Some(az) = Azurite::from_env() else {
        return;
    };
    let c = az.create_container("connstr");
    let (s, prefix) = azure::open(&StorageSettings {
        connection_string: Some(Secret::new(az.connection_string())),
        container: Some(c.clone()),
        prefix: Some("train/".into()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(s.auth_kind(), "account-key");
    assert_eq!(prefix, "train/");
    s.put("train/x.csv", b"x").unwrap();
    assert_eq!(az.store(&c).get("train/x.csv").unwrap(), b"x");
    assert_eq!(s.list(&prefix).unwrap(), vec!["train/x.csv"]);
    assert_no_secret(&format!("{} {s:?}", s.describe()));

    // A URL says where; the connection string only says how.
    let (s, prefix) = azure::open(&StorageSettings {
        url: Some(az.url(&c, "train/")),
        connection_string: Some(Secret::new(az.connection_string())),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(s.auth_kind(), "account-key");
    assert_eq!(s.list(&prefix).unwrap(), vec!["train/x.csv"]);
}

#[test]
fn a_connection_string_with_a_sas_works() {
    let Some(az) = Azurite::from_env() else {
        return;
    };
    let c = az.create_container("connsas");
    az.upload(&c, "x.csv", b"x");
    let cs = format!(
        "BlobEndpoint={};SharedAccessSignature={}",
        az.endpoint(),
        az.container_sas(&c, "racwdl")
    );
    let (s, _) = azure::open(&StorageSettings {
        connection_string: Some(Secret::new(cs)),
        container: Some(c),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(s.auth_kind(), "sas");
    assert_eq!(s.get("x.csv").unwrap(), b"x");
    s.put("y.csv", b"y").unwrap();
    assert_eq!(s.list("").unwrap(), vec!["x.csv", "y.csv"]);
}

#[test]
fn an_account_name_and_key_with_the_emulator_url_work() {
    let Some(az) = Azurite::from_env() else {
        return;
    };
    let c = az.create_container("acctkey");
    let (s, path) = azure::open(&StorageSettings {
        url: Some(az.url(&c, "")),
        account: Some(azurite::ACCOUNT.into()),
        account_key: Some(Secret::new(KEY)),
        prefix: Some("blob.csv".into()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(path, "blob.csv");
    s.put(&path, b"1,2").unwrap();
    assert_eq!(s.get(&path).unwrap(), b"1,2");
    // Creating an existing container is not an error.
    assert!(!s.create_container().unwrap());
}

#[test]
fn anonymous_access_to_a_private_container_is_denied() {
    let Some(az) = Azurite::from_env() else {
        return;
    };
    let c = az.create_container("anon");
    az.upload(&c, "x.csv", b"x");
    let (s, _) = azure::open(&StorageSettings {
        url: Some(az.url(&c, "x.csv")),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(s.auth_kind(), "anonymous");
    let e = s.get("x.csv").unwrap_err();
    assert!(matches!(e, StoreError::Denied { .. }), "{e:?}");
}

#[test]
fn describe_and_debug_never_show_a_secret() {
    let Some(az) = Azurite::from_env() else {
        return;
    };
    let c = az.create_container("describe");
    let url = az.sas_url(&c, "p/", "rl");
    let (s, _) = azure::open(&StorageSettings {
        url: Some(url.clone()),
        ..Default::default()
    })
    .unwrap();
    let d = s.describe();
    assert_eq!(d, az.url(&c, ""));
    assert_no_secret(&format!("{d} {s:?}"));
    let k = az.store(&c);
    assert_no_secret(&format!("{} {k:?}", k.describe()));
}

#[test]
fn an_unreachable_endpoint_is_an_io_error_without_the_sas() {
    // Needs no emulator: nothing listens on port 1. Takes a few seconds (retries).
    let (s, _) = azure::open(&StorageSettings {
        url: Some("http://127.0.0.1:1/devstoreaccount1/c01?sv=2022-11-02&sig=SECRETSIG".into()),
        ..Default::default()
    })
    .unwrap();
    let e = s.get("x.csv").unwrap_err();
    assert!(matches!(e, StoreError::Io { .. }), "{e:?}");
    let text = format!("{e} {e:?}");
    assert!(!text.contains("SECRETSIG"), "{text}");
    assert!(text.contains("x.csv"), "{text}");
}

#[test]
fn a_conditional_put_writes_only_over_the_version_that_was_read() {
    let Some(az) = Azurite::from_env() else {
        return;
    };
    let c = az.create_container("versions");
    let s = az.store(&c);
    assert!(s.get_versioned("state.json").unwrap().is_none());
    // Created only if absent.
    assert!(s.put_if("state.json", b"one", None).unwrap());
    assert!(!s.put_if("state.json", b"two", None).unwrap());
    let (bytes, v1) = s.get_versioned("state.json").unwrap().unwrap();
    assert_eq!(bytes, b"one");
    // Someone else writes it: our write over v1 is refused, theirs stands.
    assert!(s.put_if("state.json", b"theirs", Some(&v1)).unwrap());
    assert!(!s.put_if("state.json", b"ours", Some(&v1)).unwrap());
    let (bytes, v2) = s.get_versioned("state.json").unwrap().unwrap();
    assert_eq!(bytes, b"theirs");
    assert_ne!(v1, v2);
    assert!(s.put_if("state.json", b"ours", Some(&v2)).unwrap());
}

#[test]
fn concurrent_appends_to_an_append_blob_lose_no_line() {
    let Some(az) = Azurite::from_env() else {
        return;
    };
    let c = az.create_container("appends");
    let s = az.store(&c);
    std::thread::scope(|scope| {
        for w in 0..6 {
            let s = s.clone();
            scope.spawn(move || {
                for i in 0..10 {
                    s.append(
                        "log/decisions.jsonl",
                        format!("{{\"w\":{w},\"i\":{i}}}\n").as_bytes(),
                    )
                    .unwrap();
                }
            });
        }
    });
    let text = String::from_utf8(s.get("log/decisions.jsonl").unwrap()).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 60, "{text}");
    lines.sort_unstable();
    lines.dedup();
    assert_eq!(lines.len(), 60, "a line twice or mixed: {text}");
    // A block blob of the same name (an older log) is refused with a way out.
    s.put("old.jsonl", b"{}\n").unwrap();
    let e = s.append("old.jsonl", b"{}\n").unwrap_err().to_string();
    assert!(
        e.contains("not an append blob") && e.contains("old.jsonl"),
        "{e}"
    );
}
