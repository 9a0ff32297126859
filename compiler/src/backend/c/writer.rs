//! A small indenting line writer for C source.

#[derive(Default)]
pub(crate) struct Writer {
    out: String,
    depth: usize,
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

    pub fn finish(self) -> String {
        self.out
    }
}
