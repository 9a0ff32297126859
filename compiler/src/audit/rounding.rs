//! Rounding audit (filled in next).
