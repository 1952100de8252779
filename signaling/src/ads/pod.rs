//! Which ads fill a break: a weighted draw without replacement among the
//! active ads, in draw order, while they fit the break's duration and the
//! pod's size. Pure; the caller passes the time and the random numbers.

use crate::store::Ad;

/// The pod for a break of `duration_ms`: at most `max_ads` ads whose
/// durations add up to no more than the break (an ad longer than what is
/// left is passed over, a shorter one may still fit). `random(n)` returns
/// a number in `0..n`.
pub fn choose(
    ads: &[&Ad],
    now_ms: i64,
    duration_ms: i64,
    max_ads: usize,
    mut random: impl FnMut(u64) -> u64,
) -> Vec<i64> {
    let mut left: Vec<&Ad> = ads.iter().copied().filter(|a| a.active(now_ms)).collect();
    let mut pod = Vec::new();
    let mut remaining = duration_ms;
    while pod.len() < max_ads {
        left.retain(|a| a.duration_ms <= remaining);
        let total: u64 = left.iter().map(|a| a.weight.max(0) as u64).sum();
        if total == 0 {
            break;
        }
        let mut pick = random(total);
        let Some(i) = left.iter().position(|a| {
            let w = a.weight.max(0) as u64;
            if pick < w {
                true
            } else {
                pick -= w;
                false
            }
        }) else {
            break;
        };
        let ad = left.remove(i);
        remaining -= ad.duration_ms;
        pod.push(ad.id);
    }
    pod
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ads::vast::tests::ad;

    fn with(id: i64, duration_ms: i64, weight: i64) -> Ad {
        Ad {
            duration_ms,
            weight,
            ..ad(id)
        }
    }

    #[test]
    fn a_broadcast_with_ads_of_its_own_runs_only_those() {
        let global = with(1, 10_000, 1);
        let mut own = with(2, 10_000, 1);
        own.broadcast = Some("channel".into());
        let mut other = with(3, 10_000, 1);
        other.broadcast = Some("elsewhere".into());
        let ads = [global, own, other];
        let ids = |b: &str| {
            crate::store::inventory_for(&ads, b, 10)
                .iter()
                .map(|a| a.id)
                .collect::<Vec<_>>()
        };
        assert_eq!(ids("channel"), vec![2]);
        assert_eq!(ids("live"), vec![1]);
    }

    #[test]
    fn pods_fill_the_break_by_weight() {
        let ads = [with(1, 10_000, 1), with(2, 15_000, 3), with(3, 40_000, 5)];
        let mut retired = with(4, 5_000, 9);
        retired.retired_ms = Some(1);
        let all = [&ads[..], &[retired]].concat();
        let all: Vec<&Ad> = all.iter().collect();
        // (break ms, max ads, the draws, the pod)
        let cases: &[(i64, usize, &[u64], &[i64])] = &[
            (30_000, 4, &[0, 0], &[1, 2]),
            (30_000, 4, &[1, 0], &[2, 1]),
            (30_000, 1, &[3], &[2]),
            (12_000, 4, &[0], &[1]),
            (60_000, 4, &[4, 0, 0], &[3, 1]),
            (5_000, 4, &[], &[]),
        ];
        for (duration, max, draws, expected) in cases {
            let mut draws = draws.iter().copied();
            let pod = choose(&all, 10, *duration, *max, |n| {
                let d = draws.next().expect("no more draws than ads");
                assert!(d < n);
                d
            });
            assert_eq!(&pod, expected, "break {duration} ms, at most {max}");
        }
    }
}
