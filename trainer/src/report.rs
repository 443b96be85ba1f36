//! `report RUNDIR`: a loss-curve picture (SVG) and a Markdown summary of a run.

use crate::run::RunSummary;
use anyhow::{Context, Result, bail};
use plotters::prelude::*;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq)]
pub struct LogRow {
    pub step: usize,
    pub train_loss: f32,
    pub val_loss: Option<f32>,
    pub lr: f32,
    pub grad_norm: f32,
    pub tokens_per_s: f64,
    pub elapsed_s: f64,
}

pub fn read_log(path: &Path) -> Result<Vec<LogRow>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let bad = || anyhow::anyhow!("{} line {}: malformed row '{line}'", path.display(), i + 1);
        if f.len() != 7 {
            return Err(bad());
        }
        let num = |s: &str| s.parse::<f64>().map_err(|_| bad());
        rows.push(LogRow {
            step: f[0].parse().map_err(|_| bad())?,
            train_loss: num(f[1])? as f32,
            val_loss: if f[2].is_empty() { None } else { Some(num(f[2])? as f32) },
            lr: num(f[3])? as f32,
            grad_norm: num(f[4])? as f32,
            tokens_per_s: num(f[5])?,
            elapsed_s: num(f[6])?,
        });
    }
    Ok(rows)
}

/// Draws train loss (smoothed over 20 steps) and validation loss against the step.
pub fn plot_losses(rows: &[LogRow], out: &Path, title: &str) -> Result<()> {
    if rows.is_empty() {
        bail!("the log has no steps to plot");
    }
    let smooth: Vec<(f64, f64)> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let lo = i.saturating_sub(19);
            let w = &rows[lo..=i];
            (r.step as f64, w.iter().map(|x| x.train_loss as f64).sum::<f64>() / w.len() as f64)
        })
        .collect();
    let val: Vec<(f64, f64)> = rows.iter().filter_map(|r| r.val_loss.map(|v| (r.step as f64, v as f64))).collect();
    let max_step = rows.last().unwrap().step as f64;
    let ymax = smooth.iter().chain(&val).map(|p| p.1).fold(0.0, f64::max).min(6.0);
    let ymin = smooth.iter().chain(&val).map(|p| p.1).fold(f64::MAX, f64::min);
    let root = SVGBackend::new(out, (900, 540)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..max_step.max(1.0), (ymin - 0.1).max(0.0)..ymax + 0.1)?;
    chart.configure_mesh().x_desc("step").y_desc("loss (nats/token)").x_label_formatter(&|x| format!("{}", *x as i64)).draw()?;
    chart
        .draw_series(LineSeries::new(smooth, &BLUE))?
        .label("train (mean of 20 steps)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    chart
        .draw_series(LineSeries::new(val.clone(), RED.stroke_width(2)))?
        .label("validation")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    chart.draw_series(val.iter().map(|&p| Circle::new(p, 3, RED.filled())))?;
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    root.present()?;
    Ok(())
}

/// Writes DIR/loss.svg and DIR/report.md; returns their paths.
pub fn report(dir: &Path) -> Result<(PathBuf, PathBuf)> {
    if !dir.is_dir() {
        bail!("{} is not a run directory", dir.display());
    }
    let rows = read_log(&dir.join("log.csv"))?;
    let summary: RunSummary = serde_json::from_slice(
        &std::fs::read(dir.join("run.json")).with_context(|| format!("cannot read {}", dir.join("run.json").display()))?,
    )
    .with_context(|| format!("{} is malformed", dir.join("run.json").display()))?;
    let svg = dir.join("loss.svg");
    let s = &summary.shape;
    plot_losses(
        &rows,
        &svg,
        &format!("L={} NH={} C={} T={} ({:.2}M params)", s.n_layers, s.n_heads, s.d_model, s.context, summary.parameters as f64 / 1e6),
    )?;
    let samples = std::fs::read_to_string(dir.join("samples.md")).unwrap_or_default();
    let best = rows.iter().filter_map(|r| r.val_loss.map(|v| (r.step, v))).min_by(|a, b| a.1.total_cmp(&b.1));
    let o = &summary.options;
    let mut md = String::new();
    use std::fmt::Write;
    writeln!(md, "# Training report\n")?;
    writeln!(md, "![loss curve](loss.svg)\n")?;
    writeln!(md, "| | |\n|---|---|")?;
    writeln!(md, "| command | `{}` |", summary.command)?;
    writeln!(
        md,
        "| model | L={} NH={} C={} maxT={} V={} ({} parameters) |",
        s.n_layers, s.n_heads, s.d_model, s.context, s.vocab_size, summary.parameters
    )?;
    writeln!(md, "| batch x sequence | {} x {} |", o.batch, o.seq)?;
    writeln!(md, "| steps | {} of {}{} |", summary.steps_done, o.steps, if summary.interrupted { " (interrupted)" } else { "" })?;
    writeln!(
        md,
        "| optimiser | AdamW lr {} (warmup {}, cosine to {}x), betas ({}, {}), weight decay {}, clip {} |",
        o.lr, o.warmup, o.min_lr_fraction, o.beta1, o.beta2, o.weight_decay, o.grad_clip
    )?;
    writeln!(md, "| seed, threads | {}, {} |", o.seed, summary.threads)?;
    writeln!(md, "| training time | {:.1} s ({:.1} min) |", summary.train_seconds, summary.train_seconds / 60.0)?;
    writeln!(md, "| throughput | {:.0} tokens/s |", summary.tokens_per_second)?;
    writeln!(md, "| final train loss | {:.4} |", summary.final_train_loss)?;
    if let Some((step, v)) = best {
        writeln!(md, "| best validation loss (periodic estimate) | {v:.4} at step {step} |")?;
    }
    if let Some(v) = summary.full_val_loss {
        writeln!(md, "| final validation loss (whole split) | **{v:.4}** |")?;
    }
    writeln!(md, "\n## Samples during training\n")?;
    md.push_str(&samples);
    let md_path = dir.join("report.md");
    crate::io::write_atomic(&md_path, md.as_bytes())?;
    Ok((svg, md_path))
}
