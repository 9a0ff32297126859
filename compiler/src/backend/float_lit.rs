//! Exact float literals shared by the emitters.

/// Shortest decimal that parses back to exactly `v` (Rust's `{:?}` guarantee), with an
/// exponent form C also accepts; `None` for NaN and infinities (emitters spell those).
pub fn float_repr(v: f32) -> Option<String> {
    if !v.is_finite() {
        return None;
    }
    let s = format!("{v:?}");
    // `{:?}` prints integers as "1.0" and large/small values as "1e-7": both valid in C.
    Some(s)
}
