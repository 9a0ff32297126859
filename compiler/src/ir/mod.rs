//! The modelless intermediate representation: a static-shape graph of typed ops.
//!
//! No frontend (tract / protobuf) type appears here. Every value has a fixed shape, an
//! element type and optional quantization parameters; constants carry their data.

mod convert;
mod dtype;
mod graph;
mod print;
mod tensor;
mod verify;

pub use dtype::{DType, Quant};
pub use graph::{Graph, Node, Value, ValueId};
pub use print::print_graph;
pub use tensor::{MAX_ELEMENTS, TensorData, TensorType, checked_len, low_int, low_to_f32, shape_str};
pub use verify::verify;
