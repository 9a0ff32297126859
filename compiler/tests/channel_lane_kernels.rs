//! The C float kernels with lanes across channels (`backend/c/dw_channels.rs`,
//! `backend/c/conv_channels.rs`) on small hand-built graphs that reach their tail paths
//! (planes and pixel blocks that are not whole vectors, strides, padding, fused Relu and Clip),
//! compared with the reference interpreter through the fuzz harness's `differential`. The
//! MLPerf models exercise the same kernels on whole planes (`tests/tests/differential.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[allow(dead_code)]
#[path = "../../fuzz/src/lib.rs"]
mod fuzzgen;

use fuzzgen::{Diff, FuzzModel, Recipe, differential};

/// A `k`×`k` convolution of vals[`src`]: `out_ch` 7 gives 8 channels, `group` 0 depthwise.
fn conv(src: u8, out_ch: u8, k: u8, stride: u8, pad: u8, group: u8) -> Recipe {
    Recipe::Conv { src, out_ch, k: k - 1, stride: stride - 1, pad, dil: 0, group, bias: true, auto_pad: 0 }
}

/// What is tested, input dims (`FuzzModel::input_dims`), the graph, and a text the C of
/// each channel-lane kernel meant to run contains.
type Case = (&'static str, [u8; 4], Vec<Recipe>, Vec<&'static str>);

#[test]
fn channel_lane_kernels_match_the_reference_on_ragged_planes() {
    let tmp = tempfile::tempdir().unwrap();
    let relu = || Recipe::Unary { op: 0, src: 2 };
    let (dw, pw, dense) = ("mlrt_f8_transpose(t)", "rows + t * 3 + 0", "rows + b0 + off[t]");
    // Input 1×3×H×W; vals[1] = 8-channel convolution, vals[2] = depthwise or dense, then
    // activations and another 1×1 convolution on the (smaller) plane.
    let cases: Vec<Case> = vec![
        (
            "5x5 pointwise, depthwise s1 p1, relu",
            [0, 2, 4, 4],
            vec![conv(0, 7, 1, 1, 0, 1), conv(1, 0, 3, 1, 1, 0), relu()],
            vec![pw, dw],
        ),
        (
            "5x5 depthwise s2 p1 then 3x3 pointwise + clip",
            [0, 2, 4, 4],
            vec![
                conv(0, 7, 1, 1, 0, 1),
                conv(1, 0, 3, 2, 1, 0),
                conv(2, 7, 1, 1, 0, 1),
                Recipe::Clip { src: 3, lo: 0, hi: 0 },
            ],
            vec![pw, dw],
        ),
        (
            "2x5 pointwise (a 1-pixel tail), depthwise 2x2 valid",
            [0, 2, 1, 4],
            vec![conv(0, 7, 1, 1, 0, 1), conv(1, 0, 2, 1, 0, 0)],
            vec![pw, dw],
        ),
        (
            "6x6 depthwise s1 p0 then pointwise",
            [0, 1, 5, 5],
            vec![conv(0, 7, 1, 1, 0, 1), conv(1, 0, 3, 1, 0, 0), conv(2, 7, 1, 1, 0, 1)],
            vec![pw, dw],
        ),
        (
            "3x3 dense s2 p1 on 5x5, then 2x2 dense, relu",
            [0, 2, 4, 4],
            vec![conv(0, 7, 3, 2, 1, 1), conv(1, 7, 2, 1, 0, 1), relu()],
            vec![dense],
        ),
    ];
    let mut findings = vec![];
    for (i, (what, dims, nodes, markers)) in cases.into_iter().enumerate() {
        let m = FuzzModel { opset: 13, input_dims: dims.to_vec(), nodes, ..Default::default() };
        let work = tmp.path().join(format!("c{i}"));
        std::fs::create_dir_all(&work).unwrap();
        match differential(&m, i as u64 + 1, false, &work) {
            Ok(Diff::Agree { .. }) => {
                let c = std::fs::read_to_string(work.join("c/diff.c")).unwrap();
                for marker in markers {
                    if !c.contains(marker) {
                        findings.push(format!("{what}: no `{marker}`: a channel-lane kernel was not used"));
                    }
                }
            }
            Ok(Diff::Skipped(why)) => findings.push(format!("{what}: skipped: {why}")),
            Err(e) => findings.push(format!("{what}: {e}")),
        }
    }
    assert!(findings.is_empty(), "{}", findings.join("\n"));
}
