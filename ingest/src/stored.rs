//! "Is this version already stored?", answered once for the folder run, the dry run and a
//! document sent over the API, so the three cannot drift apart.

use std::collections::HashSet;

/// The complete versions the store holds of one document.
#[derive(Debug, Clone, Default)]
pub(crate) struct StoredVersions {
    /// `doc_hash` of each version whose commit marker is stored; more than one only after an
    /// interrupted run.
    hashes: HashSet<String>,
    /// Points of a version without its commit marker are stored too (a run was interrupted).
    unfinished: bool,
}

/// What to do with a version of a document, given what the store holds of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Nothing of the document is stored.
    New,
    /// Other versions are stored: index this one, then sweep them.
    Changed,
    /// This version is stored. `stale`: something else of the document is too (another
    /// version, or an unfinished one), left by an interrupted run and to be swept.
    Unchanged { stale: bool },
}

impl StoredVersions {
    pub fn new(hashes: HashSet<String>, unfinished: bool) -> Self {
        Self { hashes, unfinished }
    }

    pub fn decide(&self, doc_hash: &str) -> Decision {
        if self.hashes.contains(doc_hash) {
            Decision::Unchanged {
                stale: self.hashes.len() > 1 || self.unfinished,
            }
        } else if self.hashes.is_empty() {
            Decision::New
        } else {
            Decision::Changed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(hashes: &[&str], unfinished: bool) -> StoredVersions {
        StoredVersions::new(hashes.iter().map(|h| h.to_string()).collect(), unfinished)
    }

    #[test]
    fn a_version_is_new_changed_or_unchanged_by_what_is_stored() {
        assert_eq!(stored(&[], false).decide("a"), Decision::New);
        assert_eq!(stored(&["b"], false).decide("a"), Decision::Changed);
        assert_eq!(
            stored(&["a"], false).decide("a"),
            Decision::Unchanged { stale: false }
        );
    }

    #[test]
    fn leftovers_of_an_interrupted_run_make_an_unchanged_version_stale() {
        // Written anew, but the old version was not swept yet.
        assert_eq!(
            stored(&["a", "b"], false).decide("a"),
            Decision::Unchanged { stale: true }
        );
        // Points of a version without its commit marker.
        assert_eq!(
            stored(&["a"], true).decide("a"),
            Decision::Unchanged { stale: true }
        );
        // An unfinished first version is nothing stored: the document is new.
        assert_eq!(stored(&[], true).decide("a"), Decision::New);
        assert_eq!(stored(&["b"], true).decide("a"), Decision::Changed);
    }
}
