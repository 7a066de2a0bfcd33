//! Keeps `ui/src/wire.ts` equal to what the Rust types say. Run with `KAUNTER_BLESS=1` to
//! rewrite it after changing a type.

use std::path::PathBuf;

#[test]
fn committed_typescript_matches_rust_types() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../ui/src/wire.ts");
    let generated = kaunter_protocol::typescript_declarations();
    if std::env::var_os("KAUNTER_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write ui/src/wire.ts");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "ui/src/wire.ts is stale: run `KAUNTER_BLESS=1 cargo test -p kaunter-protocol` and commit it"
    );
}
