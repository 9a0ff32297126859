//! Compiles the digits CNN twice: with the Rust backend (`digits.rs`, plain Rust) and with
//! the C backend (`digits_c.rs`: safe wrappers around C compiled by the `cc` crate).

use modelless::{Builder, Lang};

fn main() -> Result<(), modelless::Error> {
    let model = "../models/digits_cnn.onnx";
    Builder::new(model).name("digits").lang(Lang::Rust).compile()?;
    Builder::new(model).name("digits_c").lang(Lang::C).compile()?;
    Ok(())
}
