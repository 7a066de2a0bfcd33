//! What a search box query means: an exact identity number or phone (looked up through the
//! store's blind index, never by decrypting everything) or free text.

use crate::phone::Phone;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchQuery {
    /// Nothing typed: show the most recent.
    All,
    /// Twelve digits: an exact MyKad number.
    IdNumber(String),
    /// A complete phone number, in E.164.
    Phone(String),
    /// Anything else: matched case-insensitively as a substring of name, id number or phone.
    Text(String),
}

impl SearchQuery {
    pub fn parse(input: &str) -> SearchQuery {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return SearchQuery::All;
        }
        let compact: String = trimmed
            .chars()
            .filter(|c| !matches!(c, ' ' | '-'))
            .collect();
        if compact.len() == 12 && compact.bytes().all(|b| b.is_ascii_digit()) {
            return SearchQuery::IdNumber(compact);
        }
        if let Ok(phone) = Phone::parse(trimmed) {
            return SearchQuery::Phone(phone.e164().to_owned());
        }
        SearchQuery::Text(trimmed.to_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_classified() {
        let cases = [
            ("", SearchQuery::All),
            ("   ", SearchQuery::All),
            (
                "790111-10-5342",
                SearchQuery::IdNumber("790111105342".into()),
            ),
            ("790111105342", SearchQuery::IdNumber("790111105342".into())),
            ("012-345 6789", SearchQuery::Phone("+60123456789".into())),
            ("+60123456789", SearchQuery::Phone("+60123456789".into())),
            ("Siti", SearchQuery::Text("siti".into())),
            ("790111", SearchQuery::Text("790111".into())),
            ("A1234567", SearchQuery::Text("a1234567".into())),
        ];
        for (input, expected) in cases {
            assert_eq!(SearchQuery::parse(input), expected, "{input:?}");
        }
    }
}
