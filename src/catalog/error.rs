//! Catalog errors and warnings: one sentence, with the file and line.

use std::fmt;
use std::path::PathBuf;

/// A problem in the catalog, at a place in a file.
///
/// The message names the field and says what to write; `Display` prints
/// `file:line: message`, the way `watchkeeper check` reports it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct CatalogError {
    /// The file.
    pub file: PathBuf,
    /// The 1-based line (1 when only the file is known).
    pub line: usize,
    /// One sentence: what is wrong and what to write.
    pub message: String,
}

impl CatalogError {
    /// An error at `file:line`.
    pub fn new(file: impl Into<PathBuf>, line: usize, message: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            line: line.max(1),
            message: message.into(),
        }
    }
}

impl fmt::Display for CatalogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line even when the message quotes a value that spans several.
        let message = self.message.replace(['\n', '\r'], " ");
        write!(f, "{}:{}: {message}", self.file.display(), self.line)
    }
}
