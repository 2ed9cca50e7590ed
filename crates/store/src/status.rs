//! Delivery statuses as SQL text. A status is stored as the number `DeliveryStatus` gives it
//! (`webhookd_core::model`, the one place the numbers are written); a statement names a status
//! through these constants, built into its text at compile time with `formatcp!`, so that a
//! statement written as one `&'static str` stays one (the prepared-statement caches are keyed
//! by it) and says the same as if the number were written in it.
//!
//! The migrations keep their numbers as literals: a partial index's predicate is fixed text,
//! and a query is served by the index only when it names the same number. A test below checks
//! those literals against the statuses.

use const_format::formatcp;
use webhookd_core::model::DeliveryStatus;

/// [`DeliveryStatus::Success`].
pub(crate) const SUCCESS: &str = formatcp!("{}", DeliveryStatus::Success as i64);
/// [`DeliveryStatus::Pending`].
pub(crate) const PENDING: &str = formatcp!("{}", DeliveryStatus::Pending as i64);
/// [`DeliveryStatus::Fail`].
pub(crate) const FAIL: &str = formatcp!("{}", DeliveryStatus::Fail as i64);
/// [`DeliveryStatus::Canceled`].
pub(crate) const CANCELED: &str = formatcp!("{}", DeliveryStatus::Canceled as i64);

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    #[test]
    fn the_sql_of_a_status_is_its_number() {
        for status in DeliveryStatus::ALL {
            let sql = match status {
                DeliveryStatus::Success => SUCCESS,
                DeliveryStatus::Pending => PENDING,
                DeliveryStatus::Fail => FAIL,
                DeliveryStatus::Canceled => CANCELED,
                // No statement names it.
                DeliveryStatus::Sending => continue,
            };
            assert_eq!(sql, status.code().to_string(), "{}", status.text());
        }
    }

    #[test]
    fn a_statement_built_at_compile_time_reads_as_written() {
        // A continued line loses its leading spaces, as in any string literal.
        const BUILT: &str = formatcp!(
            "UPDATE deliveries SET status = {FAIL} \
             WHERE status <> {PENDING}"
        );
        assert_eq!(BUILT, "UPDATE deliveries SET status = 2 WHERE status <> 1");
    }

    /// The crate's SQL and Rust files, with their text, this one left out.
    fn sources() -> Vec<(PathBuf, String)> {
        fn walk(dir: &Path, found: &mut Vec<(PathBuf, String)>) {
            for entry in std::fs::read_dir(dir).expect("a readable directory") {
                let path = entry.expect("a directory entry").path();
                if path.is_dir() {
                    walk(&path, found);
                } else if path
                    .extension()
                    .is_some_and(|extension| extension == "sql" || extension == "rs")
                    && !path.ends_with("src/status.rs")
                {
                    let text = std::fs::read_to_string(&path).expect("a readable file");
                    found.push((path, text));
                }
            }
        }
        let mut found = Vec::new();
        walk(Path::new(env!("CARGO_MANIFEST_DIR")), &mut found);
        assert!(!found.is_empty());
        found
    }

    /// The numbers `text` compares a status with or sets it to (`status = 1`, `status <> 1`,
    /// `status != 1`, `status IN (2, 4)`), with where each stands in `text`.
    fn status_literals(text: &str) -> Vec<(usize, String)> {
        let mut found = Vec::new();
        for (at, _) in text.match_indices("status") {
            let word_before = text[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_');
            let rest = &text[at + "status".len()..];
            if word_before || rest.starts_with(|c: char| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let rest = rest.trim_start();
            let Some(rest) = ["=", "<>", "!=", "IN"]
                .iter()
                .find_map(|operator| rest.strip_prefix(operator))
            else {
                continue;
            };
            let rest = rest.trim_start();
            let (rest, list) = match rest.strip_prefix('(') {
                Some(inside) => (&inside[..inside.find(')').unwrap_or(inside.len())], true),
                None => (rest, false),
            };
            let items: Vec<&str> = if list {
                rest.split(',').map(str::trim).collect()
            } else {
                vec![
                    &rest[..rest
                        .find(|c: char| !c.is_ascii_digit())
                        .unwrap_or(rest.len())],
                ]
            };
            for item in items {
                if !item.is_empty() && item.bytes().all(|b| b.is_ascii_digit()) {
                    found.push((at, item.to_owned()));
                }
            }
        }
        found
    }

    #[test]
    fn status_literals_are_found_in_every_form() {
        let numbers = |text| -> Vec<String> {
            status_literals(text)
                .into_iter()
                .map(|(_, number)| number)
                .collect()
        };
        assert_eq!(numbers("WHERE d.status = 1 AND x"), ["1"]);
        assert_eq!(numbers("SET status = 0, a = 2"), ["0"]);
        assert_eq!(numbers("status <> 1 AND status != 3"), ["1", "3"]);
        assert_eq!(numbers("status IN (2, 4)"), ["2", "4"]);
        assert!(numbers("status = ? AND response_status_code = 0 AND status = $4").is_empty());
    }

    /// The partial indexes of `deliveries` defined in `text`: each one's name and predicate.
    fn delivery_partial_indexes(text: &str) -> Vec<(String, String)> {
        let mut found = Vec::new();
        for (at, _) in text.match_indices("CREATE ") {
            let statement = &text[at..];
            let statement = &statement[..statement.find(';').unwrap_or(statement.len())];
            let Some(definition) = statement
                .strip_prefix("CREATE INDEX ")
                .or_else(|| statement.strip_prefix("CREATE UNIQUE INDEX "))
            else {
                continue;
            };
            let Some((name, on)) = definition.split_once(" ON ") else {
                continue;
            };
            if let (true, Some((_, predicate))) = (
                on.trim_start().starts_with("deliveries "),
                on.split_once(" WHERE "),
            ) {
                found.push((name.trim().to_owned(), predicate.to_owned()));
            }
        }
        found
    }

    /// The partial indexes of `deliveries` serve the claim and its neighbours, which ask for
    /// pending deliveries as `status = PENDING`: a predicate that names another number would
    /// leave those queries without their index. The same holds for the conditions of the
    /// triggers that number a new pending delivery (`NEW.status`).
    #[test]
    fn the_migrations_name_pending_by_its_number() {
        let mut indexes = Vec::new();
        for (path, text) in sources() {
            let backend = ["sqlite", "postgres"]
                .into_iter()
                .find(|backend| path.to_string_lossy().contains(backend));
            for (name, predicate) in delivery_partial_indexes(&text) {
                for (_, number) in status_literals(&predicate) {
                    assert_eq!(number, PENDING, "{}: index {name}", path.display());
                }
                indexes.push((backend, name));
            }
            for (at, _) in text.match_indices("NEW.status") {
                if let Some((0, number)) = status_literals(&text[at + "NEW.".len()..]).first() {
                    assert_eq!(number, PENDING, "{}: a trigger", path.display());
                }
            }
        }
        for backend in ["sqlite", "postgres"] {
            for name in ["deliveries_due", "deliveries_line"] {
                assert!(
                    indexes.contains(&(Some(backend), name.to_owned())),
                    "no partial index {name} found in the {backend} migrations"
                );
            }
        }
    }

    /// Statements name a status by its constant: only the migrations write its number.
    #[test]
    fn no_statement_writes_a_status_as_a_number() {
        let mut written = Vec::new();
        for (path, text) in sources() {
            let migrations = text.contains("CREATE TABLE") || text.contains("ALTER TABLE");
            if migrations || path.extension().is_some_and(|extension| extension == "sql") {
                continue;
            }
            for (at, number) in status_literals(&text) {
                let line = text[..at].lines().count();
                written.push(format!("{}:{line}: {number}", path.display()));
            }
        }
        assert!(
            written.is_empty(),
            "statuses written as numbers: {written:#?}"
        );
    }
}
