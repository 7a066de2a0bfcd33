//! Embeds `migrations/*.sql` at compile time, so the binary carries its schema and a migration
//! file can never be forgotten in a hand-written list.
//!
//! Writes `$OUT_DIR/migrations.rs`: a `&[(u32, &str, &str)]` of (version, name, sql), sorted by
//! version. File names must look like `0001_initial.sql`; anything else in the folder fails the
//! build, and so do two files with one version number.

use std::error::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() -> Result<(), Box<dyn Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let migrations_dir = manifest_dir.join("..").join("migrations");
    println!("cargo:rerun-if-changed={}", migrations_dir.display());

    let mut migrations: Vec<(u32, String, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(&migrations_dir)? {
        let path = entry?.path();
        println!("cargo:rerun-if-changed={}", path.display());
        let (version, name) = parse_file_name(&path)?;
        migrations.push((version, name, path.canonicalize()?));
    }
    migrations.sort_by_key(|(version, _, _)| *version);
    for pair in migrations.windows(2) {
        if pair[0].0 == pair[1].0 {
            return Err(format!("two migrations share version {}", pair[0].0).into());
        }
    }

    let mut out = String::from("&[\n");
    for (version, name, path) in &migrations {
        let path = path.to_str().ok_or("migration path is not UTF-8")?;
        writeln!(out, "    ({version}, {name:?}, include_str!({path:?})),")?;
    }
    out.push_str("]\n");
    let out_path = PathBuf::from(std::env::var("OUT_DIR")?).join("migrations.rs");
    std::fs::write(out_path, out)?;
    Ok(())
}

fn parse_file_name(path: &Path) -> Result<(u32, String), Box<dyn Error>> {
    let bad = || {
        format!(
            "migration file name must look like 0001_name.sql: {}",
            path.display()
        )
    };
    if path.extension().and_then(|e| e.to_str()) != Some("sql") {
        return Err(bad().into());
    }
    let stem = path.file_stem().and_then(|s| s.to_str()).ok_or_else(bad)?;
    let (digits, rest) = stem.split_once('_').ok_or_else(bad)?;
    let well_formed = digits.len() == 4
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !rest.is_empty()
        && rest
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !well_formed {
        return Err(bad().into());
    }
    Ok((digits.parse()?, stem.to_owned()))
}
