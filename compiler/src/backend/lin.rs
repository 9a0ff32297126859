//! Linear index expressions `Σ var·coeff + k`, folded at generation time so emitted code
//! has no `x * 1`, `x * 0` or `+ 0` (clean under clippy and easier to read).

use proc_macro2::{Literal, TokenStream};
use quote::quote;

/// C text for `Σ var·coeff + k`.
pub fn c_lin(terms: &[(&str, usize)], k: isize) -> String {
    let mut s: Vec<String> = terms
        .iter()
        .filter(|(_, c)| *c != 0)
        .map(|(v, c)| if *c == 1 { v.to_string() } else { format!("{v} * {c}") })
        .collect();
    if s.is_empty() {
        return k.to_string();
    }
    let mut out = s.remove(0);
    for t in s {
        out.push_str(" + ");
        out.push_str(&t);
    }
    match k {
        0 => out,
        k if k > 0 => format!("{out} + {k}"),
        k => format!("{out} - {}", -k),
    }
}

/// Rust tokens for `Σ var·coeff + k`; the literals are unsuffixed so the variables' type
/// (usize or isize) decides.
pub fn rs_lin(terms: &[(TokenStream, usize)], k: isize) -> TokenStream {
    let parts: Vec<TokenStream> = terms
        .iter()
        .filter(|(_, c)| *c != 0)
        .map(|(v, c)| {
            if *c == 1 {
                v.clone()
            } else {
                let c = Literal::usize_unsuffixed(*c);
                quote!(#v * #c)
            }
        })
        .collect();
    if parts.is_empty() {
        let k = Literal::isize_unsuffixed(k);
        return quote!(#k);
    }
    let kabs = Literal::usize_unsuffixed(k.unsigned_abs());
    let tail = match k {
        0 => quote!(),
        k if k > 0 => quote!(+ #kabs),
        _ => quote!(- #kabs),
    };
    quote!(#(#parts)+* #tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_units_and_zeros() {
        assert_eq!(c_lin(&[("a", 1), ("b", 0), ("c", 3)], -2), "a + c * 3 - 2");
        assert_eq!(c_lin(&[("a", 0)], 0), "0");
        assert_eq!(rs_lin(&[(quote!(a), 1), (quote!(b), 4)], 1).to_string(), "a + b * 4 + 1");
        assert_eq!(rs_lin(&[], 5).to_string(), "5");
    }
}
