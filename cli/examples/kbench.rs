use llm_engine::kernels::Kernels;
use llm_engine::quant::BlockType;
use llm_engine::quant::q8::Q8Buf;
use std::time::Instant;
fn main() {
    let k = Kernels::detect();
    let ic = 896;
    let t = BlockType::Q5_0;
    let rb = t.row_bytes(ic).unwrap();
    let rows: usize = std::env::args().nth(1).map_or(8, |s| s.parse().unwrap());
    let w: Vec<u8> = (0..rows * rb).map(|i| if i % 22 < 2 { if i % 2 == 0 { 0 } else { 0x3c } } else { (i * 7919 % 251) as u8 }).collect();
    let x: Vec<f32> = (0..8 * ic).map(|i| ((i * 31 % 97) as f32 - 48.0) / 17.0).collect();
    let mut b = Q8Buf::default();
    b.quantize(32, &x, ic);
    let xs: [_; 8] = core::array::from_fn(|i| b.row(i));
    let iters = 20000000 / rows / 28 * 8;
    let mut s = 0.0f32;
    let t0 = Instant::now();
    for _ in 0..iters / 8 {
        for r in 0..rows {
            s += k.dot_q8_panel(t, &w[r * rb..(r + 1) * rb], b.panel(0)).unwrap()[3];
        }
    }
    let e1 = t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    for _ in 0..iters / 8 {
        for r in 0..rows {
            s += k.dot_q8_x8(t, &w[r * rb..(r + 1) * rb], &xs)[3];
        }
    }
    let e2 = t0.elapsed().as_secs_f64();
    let gb = (iters / 8 * rows * 28) as f64;
    println!("panel {:.2} ns/group-block, x8 {:.2} ns/group-block ({s})", e1 / gb * 1e9, e2 / gb * 1e9);
}
