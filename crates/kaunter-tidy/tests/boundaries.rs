//! Dependency boundaries from ARCHITECTURE.md, checked against the resolved dependency graph:
//!
//! * tauri is reachable only from `kaunter-desktop` (src-tauri);
//! * axum is reachable only from `kaunter-sync-server`;
//! * `kaunter-core` stays pure: it declares no dependency beyond a short allow-list, and none of
//!   the I/O, async, SQL, HTTP or serde crates is reachable from it.
//!
//! "Reachable" follows normal and build dependencies, transitively; dev-dependencies are left
//! out (an end-to-end test may run the real server).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

struct Graph {
    /// package id -> crate name
    names: BTreeMap<String, String>,
    /// package id -> ids of its normal and build dependencies
    edges: BTreeMap<String, Vec<String>>,
    /// workspace member name -> package id
    members: BTreeMap<String, String>,
    /// the full metadata, for checks on declared dependencies
    metadata: Value,
}

/// Runs `cargo <args>` in this workspace and returns what it printed; fails the test if it fails.
fn cargo(args: &[&str]) -> Vec<u8> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn graph() -> Graph {
    let metadata: Value =
        serde_json::from_slice(&cargo(&["metadata", "--format-version", "1", "--locked"]))
            .expect("metadata is JSON");

    let mut names = BTreeMap::new();
    for package in metadata["packages"].as_array().expect("packages") {
        names.insert(
            package["id"].as_str().expect("id").to_owned(),
            package["name"].as_str().expect("name").to_owned(),
        );
    }
    let mut edges = BTreeMap::new();
    for node in metadata["resolve"]["nodes"]
        .as_array()
        .expect("resolve.nodes")
    {
        let id = node["id"].as_str().expect("node id").to_owned();
        let deps = node["deps"]
            .as_array()
            .expect("deps")
            .iter()
            .filter(|dep| {
                dep["dep_kinds"]
                    .as_array()
                    .expect("dep_kinds")
                    .iter()
                    .any(|kind| kind["kind"].as_str() != Some("dev"))
            })
            .map(|dep| dep["pkg"].as_str().expect("pkg").to_owned())
            .collect();
        edges.insert(id, deps);
    }
    let members = metadata["workspace_members"]
        .as_array()
        .expect("workspace_members")
        .iter()
        .map(|id| {
            let id = id.as_str().expect("member id").to_owned();
            (names[&id].clone(), id)
        })
        .collect();
    Graph {
        names,
        edges,
        members,
        metadata,
    }
}

impl Graph {
    /// Names of every crate reachable from `member` through normal and build dependencies.
    fn reachable(&self, member: &str) -> BTreeSet<String> {
        let start = self
            .members
            .get(member)
            .unwrap_or_else(|| panic!("{member} is not a workspace member"));
        let mut seen = BTreeSet::new();
        let mut stack = vec![start.clone()];
        while let Some(id) = stack.pop() {
            for dep in self.edges.get(&id).into_iter().flatten() {
                if seen.insert(dep.clone()) {
                    stack.push(dep.clone());
                }
            }
        }
        seen.iter().map(|id| self.names[id].clone()).collect()
    }

    /// Who reaches `forbidden`, among the members other than `allowed`.
    fn members_reaching(&self, forbidden: &str, allowed: &str) -> Vec<String> {
        self.members
            .keys()
            .filter(|member| member.as_str() != allowed)
            .filter(|member| self.reachable(member).contains(forbidden))
            .cloned()
            .collect()
    }
}

#[test]
fn the_workspace_has_the_members_the_code_map_names() {
    let graph = graph();
    let members: Vec<&str> = graph.members.keys().map(String::as_str).collect();
    assert_eq!(
        members,
        [
            "kaunter-core",
            "kaunter-desktop",
            "kaunter-protocol",
            "kaunter-store",
            "kaunter-sync-client",
            "kaunter-sync-server",
            "kaunter-tidy",
        ]
    );
}

#[test]
fn each_framework_is_reached_only_from_its_shell() {
    let graph = graph();
    for (framework, shell) in [
        ("tauri", "kaunter-desktop"),
        ("axum", "kaunter-sync-server"),
    ] {
        assert!(
            graph.reachable(shell).contains(framework),
            "{shell} uses {framework}"
        );
        assert_eq!(
            graph.members_reaching(framework, shell),
            Vec::<String>::new(),
            "only {shell} may depend on {framework}"
        );
    }
}

#[test]
fn the_domain_core_is_pure() {
    let graph = graph();
    let core = graph.metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .find(|package| package["name"] == "kaunter-core")
        .expect("kaunter-core is a package");

    // Declared dependencies: an allow-list, and uuid without its serde feature.
    const ALLOWED: &[&str] = &["chrono", "rust_decimal", "uuid"];
    for dep in core["dependencies"].as_array().expect("dependencies") {
        if dep["kind"].as_str() == Some("dev") {
            continue;
        }
        let name = dep["name"].as_str().expect("dependency name");
        assert!(
            ALLOWED.contains(&name),
            "kaunter-core may not depend on {name}: it holds pure rules (see ARCHITECTURE.md)"
        );
        let features: Vec<&str> = dep["features"]
            .as_array()
            .expect("features")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(
            !features.iter().any(|feature| feature.contains("serde")),
            "kaunter-core asks {name} for serde support: the wire types belong in kaunter-protocol"
        );
    }

    // What building kaunter-core alone compiles: `cargo tree -p` resolves features for that
    // package only, where the metadata graph above unifies them across the workspace (uuid's
    // serde feature, asked for by kaunter-protocol, would show up there).
    let reachable = crates_built_for("kaunter-core");
    assert!(
        reachable.contains("uuid"),
        "cargo tree lists kaunter-core's dependencies"
    );
    for forbidden in [
        "serde",
        "serde_json",
        "tokio",
        "rusqlite",
        "reqwest",
        "tokio-postgres",
        "hyper",
        "tauri",
        "axum",
        "keyring",
    ] {
        assert!(
            !reachable.contains(forbidden),
            "kaunter-core reaches {forbidden}; it must stay free of I/O and serialisation"
        );
    }
}

/// Names of the crates compiled when `package` alone is built (normal and build dependencies).
fn crates_built_for(package: &str) -> BTreeSet<String> {
    let tree = cargo(&[
        "tree",
        "--locked",
        "-p",
        package,
        "-e",
        "normal,build",
        "--prefix",
        "none",
        "--format",
        "{p}",
    ]);
    String::from_utf8(tree)
        .expect("cargo tree prints UTF-8")
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn only_the_store_speaks_sqlite_and_only_the_server_speaks_postgres() {
    let graph = graph();
    // Each outside world has one crate that talks to it; the others go through that crate.
    for member in graph.members.keys() {
        let direct: Vec<String> = graph.edges[&graph.members[member]]
            .iter()
            .map(|id| graph.names[id].clone())
            .collect();
        if direct.iter().any(|name| name == "rusqlite") {
            assert_eq!(member, "kaunter-store", "{member} uses rusqlite directly");
        }
        if direct.iter().any(|name| name == "tokio-postgres") {
            assert_eq!(
                member, "kaunter-sync-server",
                "{member} uses tokio-postgres directly"
            );
        }
        if direct.iter().any(|name| name == "reqwest") {
            assert_eq!(
                member, "kaunter-sync-client",
                "{member} uses reqwest directly"
            );
        }
    }
}
