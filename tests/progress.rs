//! What a person sees in a terminal: `pixal preprocess` runs under a pseudo-terminal (`script`,
//! from util-linux), its output is replayed on a small terminal model, and the final screen must
//! hold the log lines and no progress bar frozen at an old count ("remove_bg front [ ] 0/8"):
//! every bar is gone once its stage has ended.

mod common;

use std::process::Command;

/// A terminal of `width` columns: rows of characters, a cursor, and the pending wrap of a real
/// terminal (a full row moves the cursor down only when more text follows).
struct Terminal {
    width: usize,
    rows: Vec<Vec<char>>,
    row: usize,
    col: usize,
    pending_wrap: bool,
}

impl Terminal {
    fn new(width: usize) -> Terminal {
        Terminal {
            width,
            rows: vec![Vec::new()],
            row: 0,
            col: 0,
            pending_wrap: false,
        }
    }

    fn line(&mut self) -> &mut Vec<char> {
        while self.rows.len() <= self.row {
            self.rows.push(Vec::new());
        }
        &mut self.rows[self.row]
    }

    fn put(&mut self, c: char) {
        if self.pending_wrap {
            self.row += 1;
            self.col = 0;
            self.pending_wrap = false;
        }
        let col = self.col;
        let line = self.line();
        if line.len() <= col {
            line.resize(col + 1, ' ');
        }
        line[col] = c;
        if col + 1 == self.width {
            self.pending_wrap = true;
        } else {
            self.col += 1;
        }
    }

    /// Replays the bytes: text, CR, LF, and the CSI sequences indicatif/console use (cursor up
    /// and down, erase line); other sequences are ignored.
    fn feed(&mut self, text: &str) {
        let mut it = text.chars().peekable();
        while let Some(c) = it.next() {
            match c {
                '\r' => {
                    self.col = 0;
                    self.pending_wrap = false;
                }
                '\n' => {
                    self.row += 1;
                    self.pending_wrap = false;
                }
                '\x1b' => {
                    if it.peek() != Some(&'[') {
                        it.next();
                        continue;
                    }
                    it.next();
                    let mut params = String::new();
                    let mut cmd = ' ';
                    for d in it.by_ref() {
                        if d.is_ascii_alphabetic() || d == '~' {
                            cmd = d;
                            break;
                        }
                        params.push(d);
                    }
                    let n = params
                        .trim_start_matches('?')
                        .parse::<usize>()
                        .unwrap_or(1)
                        .max(1);
                    self.pending_wrap = false;
                    match cmd {
                        'A' => self.row = self.row.saturating_sub(n),
                        'B' => self.row += n,
                        'K' => {
                            let col = self.col;
                            let whole = params == "2";
                            let line = self.line();
                            if whole {
                                line.clear();
                            } else {
                                line.truncate(col);
                            }
                        }
                        _ => {}
                    }
                }
                c if !c.is_control() => self.put(c),
                _ => {}
            }
        }
    }

    fn screen(&self) -> Vec<String> {
        self.rows
            .iter()
            .map(|r| r.iter().collect::<String>().trim_end().to_string())
            .filter(|r| !r.is_empty())
            .collect()
    }
}

#[test]
fn a_terminal_keeps_the_log_lines_and_no_stale_progress_bars() {
    let proj = common::shipped_project();
    let root = proj.path();
    common::edit_params(root, "method: auto ", "method: classical ");
    let spec = pixal::demo::DemoSpec {
        width: 320,
        height: 240,
        good_per_type: 8,
        good_validate_per_type: 0,
        defective_per_type: 0,
        seed: 3,
    };
    let data = pixal::demo::generate(&root.join("data"), &spec).unwrap();
    let cmd = format!(
        "stty cols 100 rows 40; exec '{}' --config configs preprocess -i '{}'",
        env!("CARGO_BIN_EXE_pixal"),
        data.train.display()
    );
    // util-linux's `script` gives the run a pseudo-terminal, so the bars are drawn.
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .current_dir(root)
        .output()
        .expect("`script` (util-linux) runs pixal under a pseudo-terminal");
    let raw = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{raw}");
    // The bars were drawn (so the check below means something)...
    assert!(raw.contains("remove_bg front ["), "{raw}");
    assert!(raw.contains("/8 "), "{raw}");
    let mut term = Terminal::new(100);
    term.feed(&raw);
    let screen = term.screen();
    // ...and none is left: every line on screen is a log line.
    let stale: Vec<&String> = screen
        .iter()
        .filter(|l| l.contains(" [") && l.contains("] ") && l.contains(" eta "))
        .collect();
    assert!(
        stale.is_empty(),
        "bars left on the screen: {stale:#?}\n{screen:#?}"
    );
    assert!(
        screen.iter().any(|l| l.starts_with("preprocess: ")),
        "{screen:#?}"
    );
}
