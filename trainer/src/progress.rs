//! The live progress bar: step, train loss, validation loss, tokens/s, ETA.

use indicatif::{ProgressBar, ProgressStyle};

pub fn bar(done: usize, total: usize) -> ProgressBar {
    let b = ProgressBar::new(total as u64);
    b.set_style(
        ProgressStyle::with_template("{bar:30.cyan/blue} {pos}/{len} | {msg} | {elapsed_precise} ETA {eta_precise}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    b.set_position(done as u64);
    b
}

pub fn update(b: &ProgressBar, step: usize, loss: f32, val: Option<f32>, tokens_per_s: f64) {
    b.set_position(step as u64);
    let val = val.map_or("-".to_string(), |v| format!("{v:.4}"));
    b.set_message(format!("loss {loss:.4} val {val} | {tokens_per_s:.0} tok/s"));
}
