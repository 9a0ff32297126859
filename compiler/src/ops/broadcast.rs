//! NumPy-style multidirectional broadcasting.

/// The broadcast shape of two shapes, or an error naming both.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Result<Vec<usize>, String> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i + a.len() >= rank { a[i + a.len() - rank] } else { 1 };
        let db = if i + b.len() >= rank { b[i + b.len() - rank] } else { 1 };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => {
                return Err(format!("shapes {a:?} and {b:?} cannot be broadcast together"));
            }
        };
    }
    Ok(out)
}

/// Strides to read an input of shape `shape` while iterating over `out` (0 on broadcast axes).
pub fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let s = super::strides_of(shape);
    let off = out.len() - shape.len();
    (0..out.len()).map(|i| if i < off || shape[i - off] == 1 { 0 } else { s[i - off] }).collect()
}

/// For every flat output index, the flat input index it reads.
pub fn broadcast_index_map(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let st = broadcast_strides(shape, out);
    let total: usize = out.iter().product();
    let mut res = Vec::with_capacity(total);
    let mut idx = vec![0usize; out.len()];
    for _ in 0..total {
        res.push(idx.iter().zip(&st).map(|(i, s)| i * s).sum());
        for ax in (0..out.len()).rev() {
            idx[ax] += 1;
            if idx[ax] < out[ax] {
                break;
            }
            idx[ax] = 0;
        }
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn broadcast_basic() {
        assert_eq!(broadcast_shapes(&[1, 3, 4], &[4]).ok(), Some(vec![1, 3, 4]));
        assert_eq!(broadcast_shapes(&[2, 1], &[1, 5]).ok(), Some(vec![2, 5]));
        assert!(broadcast_shapes(&[2, 3], &[4]).is_err());
    }

    proptest! {
        #[test]
        fn broadcast_with_ones_is_identity(shape in proptest::collection::vec(1usize..5, 0..5)) {
            let ones = vec![1; shape.len()];
            prop_assert_eq!(broadcast_shapes(&shape, &ones).ok(), Some(shape.clone()));
            prop_assert_eq!(broadcast_shapes(&[], &shape).ok(), Some(shape.clone()));
        }

        #[test]
        fn index_map_stays_in_bounds(shape in proptest::collection::vec(1usize..4, 1..4), mask in proptest::collection::vec(any::<bool>(), 4)) {
            let small: Vec<usize> = shape.iter().zip(&mask).map(|(&d, &m)| if m { 1 } else { d }).collect();
            let out = broadcast_shapes(&small, &shape).unwrap();
            prop_assert_eq!(&out, &shape);
            let map = broadcast_index_map(&small, &out);
            let n: usize = small.iter().product();
            prop_assert_eq!(map.len(), out.iter().product::<usize>());
            prop_assert!(map.iter().all(|&i| i < n));
        }
    }
}
