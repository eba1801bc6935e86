//! A small, explicit random number generator for shuffling and augmentation.
//!
//! Every random choice of a run is derived from `--seed` with [`mix`], never from a global or
//! thread-local generator: the order of epoch `e` and the augmentation of image `i` in epoch
//! `e` depend only on `(seed, e, i)`. That makes runs reproducible whatever the number of data
//! workers, and lets `--resume` continue exactly where a run stopped.

/// SplitMix64 (Steele, Lea & Flood 2014): 64-bit state, full period, good enough statistics
/// for data augmentation, and trivially reproducible.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

/// Mixes a seed with stream coordinates (e.g. epoch and image index) into a new seed.
pub fn mix(seed: u64, a: u64, b: u64) -> u64 {
    let mut rng = Rng::new(seed ^ 0x5851_F42D_4C95_7F2D);
    let x = rng.next_u64() ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut rng = Rng::new(x);
    let y = rng.next_u64() ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    Rng::new(y).next_u64()
}

impl Rng {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`), without modulo bias.
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "below(0)");
        let n = n as u64;
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let v = self.next_u64();
            if v < zone {
                return (v % n) as usize;
            }
        }
    }

    /// Uniform in `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A fair coin.
    pub fn coin(&mut self) -> bool {
        self.next_u64() >> 63 == 1
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // (0, 1]
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproducible_and_distinct_streams() {
        let a: Vec<u64> = (0..4).map(|_| Rng::new(7).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(mix(1, 2, 3), mix(1, 3, 2));
        assert_ne!(mix(1, 2, 3), mix(2, 2, 3));
        assert_eq!(mix(1, 2, 3), mix(1, 2, 3));
    }

    #[test]
    fn below_and_shuffle_cover_everything() {
        let mut rng = Rng::new(1);
        let mut seen = [0usize; 5];
        for _ in 0..5000 {
            seen[rng.below(5)] += 1;
        }
        assert!(seen.iter().all(|&c| c > 800), "{seen:?}");
        let mut v: Vec<usize> = (0..100).collect();
        rng.shuffle(&mut v);
        assert_ne!(v, (0..100).collect::<Vec<_>>());
        v.sort();
        assert_eq!(v, (0..100).collect::<Vec<_>>());
        let mean: f64 = (0..10000).map(|_| rng.normal()).sum::<f64>() / 10000.0;
        assert!(mean.abs() < 0.05);
    }
}
