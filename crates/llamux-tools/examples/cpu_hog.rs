//! A process that keeps every CPU busy (one spinning thread per CPU, or the count given), to try
//! `llama "why is my system slow?"` and `llama "kill the process eating my CPU"` on; the tests
//! start it as their hog. Runs until killed.

use std::hint::black_box;

fn main() {
    let n = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()).max(2));
    let spin = || {
        let mut x = 0u64;
        loop {
            x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    };
    for _ in 1..n {
        std::thread::spawn(spin);
    }
    spin();
}
