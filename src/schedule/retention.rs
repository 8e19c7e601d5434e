//! Which scheduled images to keep: the newest N, the newest of each of the last N
//! weeks (Monday-based, UTC), the newest of each of the last N months (UTC); then,
//! while the repository is over its space budget, the oldest remaining images go,
//! except the newest image of each disk, which is never removed (a backup that is
//! too big for its budget is still better than none).
//!
//! Pure logic over (name, time) lists; the budget loop takes the delete-and-measure
//! step as a closure because what deleting an image frees is only known after the
//! repository's prune (chunks shared with other images stay).

use crate::timefmt::civil;
use serde::Serialize;
use std::collections::BTreeSet;

/// One scheduled image of one disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub name: String,
    pub created_unix: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    pub keep_last: u32,
    pub keep_weekly: u32,
    pub keep_monthly: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Kept, newest first.
    pub keep: Vec<String>,
    /// Removed by the rules, newest first.
    pub delete: Vec<String>,
}

/// Monday-based week number since the epoch (1970-01-01 was a Thursday).
fn week(secs: u64) -> u64 {
    (secs / 86_400 + 3) / 7
}

fn month(secs: u64) -> (i64, u32) {
    let (y, m, ..) = civil(secs);
    (y, m)
}

/// Applies the keep rules to one disk's images. The newest is always kept, even with
/// every count at zero.
pub fn decide(images: &[Candidate], policy: Policy) -> Decision {
    let mut sorted: Vec<&Candidate> = images.iter().collect();
    // Newest first; equal times by name so the result does not depend on input order.
    sorted.sort_by(|a, b| (b.created_unix, &b.name).cmp(&(a.created_unix, &a.name)));
    let mut keep: BTreeSet<usize> = BTreeSet::new();
    keep.extend(0..(policy.keep_last.max(1) as usize).min(sorted.len()));
    keep_per_bucket(
        &sorted,
        policy.keep_weekly,
        |c| week(c.created_unix),
        &mut keep,
    );
    keep_per_bucket(
        &sorted,
        policy.keep_monthly,
        |c| month(c.created_unix),
        &mut keep,
    );
    let mut d = Decision::default();
    for (i, c) in sorted.iter().enumerate() {
        match keep.contains(&i) {
            true => d.keep.push(c.name.clone()),
            false => d.delete.push(c.name.clone()),
        }
    }
    d
}

/// Keeps the newest image of each of the `n` newest buckets that hold an image.
fn keep_per_bucket<K: PartialEq>(
    newest_first: &[&Candidate],
    n: u32,
    bucket: impl Fn(&Candidate) -> K,
    keep: &mut BTreeSet<usize>,
) {
    let mut last: Option<K> = None;
    let mut taken = 0u32;
    for (i, c) in newest_first.iter().enumerate() {
        if taken >= n {
            break;
        }
        let b = bucket(c);
        if last.as_ref() != Some(&b) {
            keep.insert(i);
            taken += 1;
            last = Some(b);
        }
    }
}

/// The order in which kept images give way to the budget: oldest first, never a
/// disk's newest. `groups` holds each disk's kept images.
pub fn budget_order(groups: &[Vec<Candidate>]) -> Vec<String> {
    let mut all: Vec<&Candidate> = Vec::new();
    for g in groups {
        let newest = g.iter().max_by_key(|c| (c.created_unix, &c.name));
        all.extend(g.iter().filter(|c| Some(*c) != newest));
    }
    all.sort_by_key(|c| (c.created_unix, &c.name));
    all.into_iter().map(|c| c.name.clone()).collect()
}

/// Removes images in `order` while `used` exceeds `budget`; `remove` deletes one and
/// returns the repository's size after it. Returns the removed names.
pub fn trim_to_budget<E>(
    order: &[String],
    budget: u64,
    mut used: u64,
    mut remove: impl FnMut(&str) -> Result<u64, E>,
) -> Result<Vec<String>, E> {
    let mut removed = Vec::new();
    for name in order {
        if used <= budget {
            break;
        }
        used = remove(name)?;
        removed.push(name.clone());
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400;
    /// 2026-11-02 00:00 UTC, a Monday.
    const MON: u64 = 1_793_577_600;

    fn imgs(days: &[u64]) -> Vec<Candidate> {
        days.iter()
            .map(|d| Candidate {
                name: format!("d{d:03}"),
                created_unix: MON + d * DAY + 3600,
            })
            .collect()
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn monday_is_week_start() {
        assert_eq!(crate::timefmt::utc_human(MON), "2026-11-02 00:00 UTC");
        assert_eq!(week(MON), week(MON + 6 * DAY + 86_399));
        assert_ne!(week(MON), week(MON - 1));
    }

    /// Days since MON of each image, policy (last, weekly, monthly), the names kept.
    type Case = (&'static [u64], (u32, u32, u32), &'static [&'static str]);

    #[test]
    fn keep_rules_table() {
        let cases: &[Case] = &[
            // Only the newest, however old the rest.
            (&[0, 1, 2, 3], (1, 0, 0), &["d003"]),
            // Zero counts still keep the newest.
            (&[0, 1, 2], (0, 0, 0), &["d002"]),
            (&[0, 1, 2, 3], (2, 0, 0), &["d003", "d002"]),
            // Weekly: the newest of each week; days 0..6 are one week, 7.. the next.
            (&[0, 3, 6, 7, 9], (1, 2, 0), &["d009", "d006"]),
            (&[0, 3, 6, 7, 9], (1, 3, 0), &["d009", "d006"]),
            (&[0, 7, 14, 21], (1, 3, 0), &["d021", "d014", "d007"]),
            // Monthly: Nov 2 + 29 = Dec 1; Nov 30 is the newest of November.
            (&[0, 10, 28, 29, 40], (1, 0, 2), &["d040", "d028"]),
            // Rules overlap: each image counted once.
            (&[0, 28, 29, 40], (2, 1, 2), &["d040", "d029", "d028"]),
            (&[], (3, 3, 3), &[]),
        ];
        for (days, (l, w, m), want) in cases {
            let policy = Policy {
                keep_last: *l,
                keep_weekly: *w,
                keep_monthly: *m,
            };
            let d = decide(&imgs(days), policy);
            assert_eq!(d.keep, names(want), "{days:?} {policy:?}");
            assert_eq!(d.keep.len() + d.delete.len(), days.len());
        }
    }

    #[test]
    fn budget_removes_oldest_and_never_a_disks_newest() {
        let a = imgs(&[0, 2, 4]);
        let mut b = imgs(&[1, 3]);
        for c in &mut b {
            c.name = format!("b-{}", c.name);
        }
        let order = budget_order(&[a, b]);
        assert_eq!(order, names(&["d000", "b-d001", "d002"]));
        // (budget, used before, size freed by each removal, removed)
        let cases: &[(u64, u64, u64, &[&str])] = &[
            (100, 90, 10, &[]),
            (100, 120, 10, &["d000", "b-d001"]),
            (100, 500, 10, &["d000", "b-d001", "d002"]),
            (0, 500, 0, &["d000", "b-d001", "d002"]),
        ];
        for (budget, used, step, want) in cases {
            let mut now = *used;
            let got = trim_to_budget(&order, *budget, *used, |_| {
                now -= step;
                Ok::<_, ()>(now)
            })
            .unwrap();
            assert_eq!(got, names(want), "budget {budget} used {used}");
        }
    }
}
