//! The predicted RTO of a plan run in lanes: within a wave (guests of one startup order)
//! each guest goes to the lane free first (ties: the lower lane), in restore order; a wave
//! starts once the one before it has ended. The RTO is the makespan.

use std::ops::Range;

/// Each guest's lane (1-based) and the makespan, for `seconds` per guest (restore order).
pub fn schedule(seconds: &[f64], waves: &[Range<usize>], jobs: usize) -> (Vec<u32>, f64) {
    let jobs = jobs.max(1);
    let mut lanes = vec![0u32; seconds.len()];
    let mut start = 0.0f64;
    for w in waves {
        let mut free = vec![start; jobs];
        for i in w.clone() {
            let (lane, at) =
                free.iter()
                    .copied()
                    .enumerate()
                    .fold(
                        (0, f64::INFINITY),
                        |b, (l, t)| if t < b.1 { (l, t) } else { b },
                    );
            free[lane] = at + seconds[i].max(0.0);
            lanes[i] = lane as u32 + 1;
        }
        start = free.iter().copied().fold(start, f64::max);
    }
    (lanes, start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_within_a_wave_and_a_barrier_between_waves() {
        // Wave 1: 10 and 4 in two lanes (ends at 10); wave 2: 3, 3, 3 from 10.
        let s = [10.0, 4.0, 3.0, 3.0, 3.0];
        let (lanes, rto) = schedule(&s, &[0..2, 2..5], 2);
        assert_eq!(lanes, [1, 2, 1, 2, 1]);
        assert_eq!(rto, 16.0);
        let (lanes, rto) = schedule(&s, &[0..2, 2..5], 1);
        assert_eq!(lanes, [1, 1, 1, 1, 1]);
        assert_eq!(rto, 23.0);
        assert_eq!(schedule(&[], &[], 3), (vec![], 0.0));
    }
}
