//! The clock glbox's waits and polls run on. On AWS a box takes minutes to
//! boot and install; `scripts/bench-timeline` measures those minutes
//! against an emulator whose clock runs fast (tests/emulator/moto_launcher.py
//! "timeline"). For that, test builds with the `simclock` feature read
//! `GLBOX_CLOCK_SCALE` (simulated seconds per real second) and run glbox's
//! pauses and deadlines that much faster too. Releases never have it: their
//! scale is 1. AWS's own retry pauses and network timeouts stay real.

use std::time::Duration;

use tokio::time::Instant;

/// Simulated seconds per real second.
#[cfg(feature = "simclock")]
pub fn scale() -> f64 {
    use std::sync::OnceLock;
    static SCALE: OnceLock<f64> = OnceLock::new();
    *SCALE.get_or_init(|| {
        std::env::var("GLBOX_CLOCK_SCALE")
            .ok()
            .and_then(|text| text.parse::<f64>().ok())
            .filter(|scale| scale.is_finite() && *scale >= 1.0)
            .unwrap_or(1.0)
    })
}

#[cfg(not(feature = "simclock"))]
pub fn scale() -> f64 {
    1.0
}

/// Pauses for `duration` of glbox's clock.
pub async fn sleep(duration: Duration) {
    tokio::time::sleep(duration.div_f64(scale())).await;
}

/// Time passed on glbox's clock since it was started.
#[derive(Clone, Copy)]
pub struct Stopwatch(Instant);

impl Stopwatch {
    pub fn start() -> Stopwatch {
        Stopwatch(Instant::now())
    }

    pub fn elapsed(&self) -> Duration {
        self.0.elapsed().mul_f64(scale())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn without_a_scale_the_clock_is_real_time() {
        // Test builds read no GLBOX_CLOCK_SCALE here, so the scale is 1.
        assert_eq!(scale(), 1.0);
        let watch = Stopwatch::start();
        sleep(Duration::from_secs(90)).await;
        assert_eq!(watch.elapsed(), Duration::from_secs(90));
    }
}
