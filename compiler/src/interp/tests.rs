//! Unit tests of the interpreter on small hand-built graphs.
