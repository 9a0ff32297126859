//! Exact float literals shared by the emitters.

/// Shortest decimal that parses back to exactly `v` (Rust's `{:?}` guarantee), with an
/// exponent form C also accepts; `None` for NaN and infinities (emitters spell those).
pub fn float_repr(v: f32) -> Option<String> {
    // `{:?}` prints integers as "1.0" and large/small values as "1e-7": both valid in C.
    v.is_finite().then(|| format!("{v:?}"))
}

/// [`float_repr`] for a float64.
pub fn float_repr64(v: f64) -> Option<String> {
    v.is_finite().then(|| format!("{v:?}"))
}
