//! The C float kernels with lanes across channels (`backend/c/dw_channels.rs`,
//! `backend/c/conv_channels.rs`) on small hand-built graphs that reach their tail paths
//! (planes and pixel blocks that are not whole vectors, strides, padding, fused Relu and Clip),
//! compared with the reference interpreter through the fuzz harness's `differential`, over
//! NCHW tensors and over channel blocks (`backend/c/blocks.rs`). The MLPerf models exercise
//! the same kernels on whole planes (`tests/tests/differential.rs`).

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
    // What each kernel's C contains, per layout of its input and output: NCHW (transposed or
    // gathered per pixel) or channel blocks (`backend/c/blocks.rs`, one vector per pixel).
    let dw_in = "mlrt_f8_transpose(t)";
    let dw_out = "mlrt_f8_transpose(a)";
    let dw_in_blocks = "mlrt_f8_load(xc + (r * ";
    let dw_out_blocks = "yc + (o + 0) * 8";
    let pw_in = "rows + t * 3 + 0";
    let pw_in_blocks = "rows + (tb * 3 + 0) * 8 + 0";
    let conv_out = "lanes[l]";
    let conv_out_blocks = "yn + ((ob * ";
    let dense = "rows + b0 + off[t]";
    let dense_in_blocks = "r / 5 / 8 * 25";
    let pool_blocks = "s0 = mlrt_f8_add(s0";
    // Input 1×3×H×W; vals[1] = 8-channel convolution, vals[2] = depthwise or dense, then
    // activations and more convolutions or a pool.
    let cases: Vec<Case> = vec![
        (
            "5x5 pointwise to blocks, depthwise s1 p1 from blocks, relu",
            [0, 2, 4, 4],
            vec![conv(0, 7, 1, 1, 0, 1), conv(1, 0, 3, 1, 1, 0), relu()],
            vec![pw_in, conv_out_blocks, dw_in_blocks, dw_out],
        ),
        (
            "5x5 pointwise, Add, depthwise s1 p1 on NCHW",
            [0, 2, 4, 4],
            vec![
                conv(0, 7, 1, 1, 0, 1),
                Recipe::Binary { op: 0, a: 1, b: 1, mask: 0, constant: false, trim: 0 },
                conv(2, 0, 3, 1, 1, 0),
            ],
            vec![pw_in, conv_out, dw_in, dw_out],
        ),
        (
            "5x5 depthwise s2 p1 between blocks, then 3x3 pointwise + clip",
            [0, 2, 4, 4],
            vec![
                conv(0, 7, 1, 1, 0, 1),
                conv(1, 0, 3, 2, 1, 0),
                conv(2, 7, 1, 1, 0, 1),
                Recipe::Clip { src: 3, lo: 0, hi: 0 },
            ],
            vec![pw_in, conv_out_blocks, dw_in_blocks],
        ),
        (
            "2x5 pointwise (a 1-pixel tail), depthwise 2x2 valid",
            [0, 2, 1, 4],
            vec![conv(0, 7, 1, 1, 0, 1), conv(1, 0, 2, 1, 0, 0)],
            vec![conv_out_blocks, dw_in_blocks],
        ),
        (
            "6x6 chain in blocks: depthwise s1 p0, pointwise, depthwise, global average pool",
            [0, 1, 5, 5],
            vec![
                conv(0, 7, 1, 1, 0, 1),
                conv(1, 0, 3, 1, 0, 0),
                conv(2, 7, 1, 1, 0, 1),
                conv(3, 0, 3, 1, 1, 0),
                Recipe::Pool { op: 2, src: 4, k: 0, stride: 0, pad: 0, ceil: false },
            ],
            vec![dw_in_blocks, dw_out_blocks, pw_in_blocks, conv_out_blocks, pool_blocks],
        ),
        (
            "3x3 dense s2 p1 on 5x5, then 2x2 dense, relu",
            [0, 2, 4, 4],
            vec![conv(0, 7, 3, 2, 1, 1), conv(1, 7, 2, 1, 0, 1), relu()],
            vec![dense, conv_out],
        ),
        (
            "3x3 dense s2 p1 reading blocks",
            [0, 2, 4, 4],
            vec![conv(0, 7, 1, 1, 0, 1), conv(1, 0, 3, 1, 1, 0), conv(2, 7, 3, 2, 1, 1)],
            vec![dw_out_blocks, dense, dense_in_blocks],
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
