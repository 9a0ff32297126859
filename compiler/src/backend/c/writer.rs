//! A small indenting line writer for C source.

#[derive(Default)]
pub(crate) struct Writer {
    out: String,
    depth: usize,
    /// Inputs (by position) that the kernel being written replaced by its own compile-time
    /// packed copy: they are neither parameters of the kernel nor emitted as weights.
    packed: Vec<usize>,
}

impl Writer {
    pub fn line(&mut self, s: &str) {
        if s.is_empty() {
            self.out.push('\n');
            return;
        }
        for _ in 0..self.depth {
            self.out.push_str("    ");
        }
        self.out.push_str(s);
        self.out.push('\n');
    }

    pub fn indent(&mut self) {
        self.depth += 1;
    }

    pub fn dedent(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// Opens `head {` and indents.
    pub fn open(&mut self, head: &str) {
        self.line(&format!("{head} {{"));
        self.indent();
    }

    /// Dedents and closes with `}`.
    pub fn close(&mut self) {
        self.dedent();
        self.line("}");
    }

    /// Appends already indented text.
    pub fn raw(&mut self, s: &str) {
        self.out.push_str(s);
    }

    /// Records that the kernel reads input `k` only through its own packed copy.
    pub fn packs_input(&mut self, k: usize) {
        self.packed.push(k);
    }

    /// The inputs recorded by [`Writer::packs_input`].
    pub fn packed_inputs(&self) -> &[usize] {
        &self.packed
    }

    pub fn finish(self) -> String {
        self.out
    }
}
