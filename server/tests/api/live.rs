//! Placeholder; tests arrive with the next change.
