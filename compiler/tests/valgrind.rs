//! valgrind memcheck on the generated C of every float model in `../shared/models/{digits,
//! mlperf-tiny}`: the harness hands the model an arena straight from malloc (uninitialised),
//! so any read of an arena byte before it is written, any out-of-bounds access and any use
//! of an uninitialised value in a branch or the printed outputs is reported (exit 99).
//! `.ci/run` installs valgrind when it is missing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use common::shared;
use std::process::Command;

const HARNESS: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include "m.h"
int main(void) {
    static float in[M_INPUT_LEN], out[M_OUTPUT_LEN];
    for (int i = 0; i < M_INPUT_LEN; i++) in[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
    void *arena = malloc(M_ARENA_BYTES > 0 ? M_ARENA_BYTES : 1); /* deliberately uninitialised */
    int rc = m_run(in, out, arena);
    for (int i = 0; i < M_OUTPUT_LEN; i++) printf("%g\n", out[i]);
    free(arena);
    return rc;
}
"#;

#[test]
fn generated_c_is_memcheck_clean() {
    assert!(
        Command::new("valgrind").arg("--version").output().is_ok_and(|o| o.status.success()),
        "valgrind is not installed (apt-get install valgrind; .ci/run does it)"
    );
    let tmp = tempfile::tempdir().unwrap();
    let mut checked = vec![];
    for suite in ["digits", "mlperf-tiny"] {
        let mut dirs: Vec<_> = std::fs::read_dir(shared().join("models").join(suite)).unwrap().flatten().collect();
        dirs.sort_by_key(|e| e.file_name());
        for e in dirs {
            let name = e.file_name().to_string_lossy().into_owned();
            let model = e.path().join("model.onnx");
            if !model.is_file() || name.ends_with("_int8") {
                continue;
            }
            let out = tmp.path().join(&name);
            let o = Command::new(env!("CARGO_BIN_EXE_modelless"))
                .args(["build", model.to_str().unwrap(), "--name", "m", "-o", out.to_str().unwrap()])
                .output()
                .unwrap();
            assert!(o.status.success(), "{name}: {}", String::from_utf8_lossy(&o.stderr));
            std::fs::write(out.join("main.c"), HARNESS).unwrap();
            let exe = out.join("a.out");
            let cc = Command::new("cc")
                .args(["-std=c99", "-O1", "-g", "-o", exe.to_str().unwrap(), "main.c", "m.c", "-lm"])
                .current_dir(&out)
                .output()
                .unwrap();
            assert!(cc.status.success(), "{name}: {}", String::from_utf8_lossy(&cc.stderr));
            let vg = Command::new("valgrind")
                .args(["--error-exitcode=99", "--track-origins=yes", "--quiet", exe.to_str().unwrap()])
                .output()
                .unwrap();
            assert_eq!(vg.status.code(), Some(0), "{name}: memcheck:\n{}", String::from_utf8_lossy(&vg.stderr));
            checked.push(name);
        }
    }
    assert!(checked.len() >= 7, "{checked:?}");
    eprintln!("memcheck clean: {checked:?}");
}
