//! Exporting what a desk holds: one CSV file per kind of record (RFC 4180: comma-separated,
//! fields quoted when they hold a comma, quote or line break, CRLF line ends, UTF-8 with a byte
//! order mark so spreadsheet programs read Malay and Chinese names right), decrypted. Allowed in
//! every subscription state: a business's data is always its own to take away (PDPA 2010).
//! Deleted records are left out; clinical records only when the caller says so (the person's
//! role reads them).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use kaunter_protocol::http::{DELETED_FIELD, Entity, Fields};
use serde_json::Value;

use crate::error::{Result, StoreError};
use crate::store::Store;

/// One file written by an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedFile {
    pub path: PathBuf,
    /// Records written (the header line not counted).
    pub records: usize,
}

/// A CSV field, quoted when it needs to be.
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// A field's value as a spreadsheet shows it: text as it is, nothing for null.
fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

fn line(cells: &[String]) -> String {
    let mut out = cells.iter().map(|c| field(c)).collect::<Vec<_>>().join(",");
    out.push_str("\r\n");
    out
}

impl Store {
    /// Writes every live record this desk holds into `dir` (created if needed), one CSV file
    /// per kind (`patients.csv`, `appointments.csv`, ...), clinical records only with
    /// `include_clinical`. Returns the files written.
    pub fn export_csv(&self, dir: &Path, include_clinical: bool) -> Result<Vec<ExportedFile>> {
        std::fs::create_dir_all(dir)
            .map_err(|error| StoreError::Export(format!("{}: {error}", dir.display())))?;
        let mut written = Vec::new();
        for entity in Entity::ALL {
            if entity == Entity::ClinicalEntry && !include_clinical {
                continue;
            }
            let rows: Vec<(uuid::Uuid, uuid::Uuid, Fields)> = self
                .row_states(entity)?
                .into_iter()
                .filter(|(_, _, fields, _)| fields.get(DELETED_FIELD) != Some(&Value::Bool(true)))
                .map(|(id, branch, fields, _)| (id, branch, fields))
                .collect();
            let mut header = vec!["id".to_owned(), "branch_id".to_owned()];
            header.extend(entity.fields().iter().map(|name| (*name).to_owned()));
            let mut text = String::from("\u{feff}");
            text.push_str(&line(&header));
            for (id, branch, fields) in &rows {
                let mut cells = vec![id.to_string(), branch.to_string()];
                cells.extend(entity.fields().iter().map(|name| cell(fields.get(*name))));
                text.push_str(&line(&cells));
            }
            let path = dir.join(format!("{}.csv", crate::rows::table(entity)));
            let mut file = std::fs::File::create(&path)
                .map_err(|error| StoreError::Export(format!("{}: {error}", path.display())))?;
            file.write_all(text.as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|error| StoreError::Export(format!("{}: {error}", path.display())))?;
            written.push(ExportedFile {
                path,
                records: rows.len(),
            });
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_only_when_they_must_be() {
        assert_eq!(field("Aminah binti Ali"), "Aminah binti Ali");
        assert_eq!(field("Tan, Mei Ling"), "\"Tan, Mei Ling\"");
        assert_eq!(field("say \"ah\""), "\"say \"\"ah\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
        assert_eq!(cell(Some(&Value::Null)), "");
        assert_eq!(cell(Some(&Value::Bool(true))), "true");
        assert_eq!(line(&["a".into(), "b,c".into()]), "a,\"b,c\"\r\n");
    }
}
